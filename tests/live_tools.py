"""Calling every tool a live server lists, with arguments made from the tools' own schemas.

No tool or parameter is named here, so tools and parameters added later are called too. A
required parameter gets the value an earlier call returned under the same name (so a tool that
fetches a job runs after the tool that starts one), or else a sample of its type; a tool that
fails with its required parameters alone is tried again with a prompt in its first free-text one.
A slow client (a CLI run per call) replays the arguments a fast one found with `same_arguments`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from mcp import Client

SAMPLE_TEXT = "Say hello in five words"

Tool = dict[str, Any]
"""A tool as `tools/list` sends it (camelCase keys: `inputSchema`, `outputSchema`)."""
Result = dict[str, Any]
"""A `tools/call` result as sent (`content`, `structuredContent`, `isError`)."""
Call = Callable[[str, dict[str, Any]], Awaitable[Result]]
Outcomes = dict[str, tuple[dict[str, Any], Result]]
"""Each tool's name → the arguments it was last called with and what it returned."""
Candidates = Callable[[Tool, Mapping[str, Any]], list[dict[str, Any]]]
"""The argument sets to try for a tool, in order, given the values earlier calls returned."""


async def call_every_tool(tools: list[Tool], call: Call, candidates: Candidates | None = None) -> Outcomes:
    """Every tool called, one call at a time, until a set of arguments succeeds (`isError: false`) or none is left."""
    candidates = candidates or candidate_arguments
    known: dict[str, Any] = {}
    outcomes: Outcomes = {}
    for tool in _in_order(tools):
        for arguments in candidates(tool, known):
            result = await call(tool["name"], arguments)
            outcomes[tool["name"]] = (arguments, result)
            if not result.get("isError"):
                known.update(result.get("structuredContent") or {})
                break
    return outcomes


async def listed_tools(client: Client) -> list[Tool]:
    listing = await client.list_tools()
    return [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in listing.tools]


def calls_through(client: Client) -> Call:
    """`call` for the SDK's own client."""

    async def call(name: str, arguments: dict[str, Any]) -> Result:
        return (await client.call_tool(name, arguments)).model_dump(mode="json", by_alias=True, exclude_none=True)

    return call


def candidate_arguments(tool: Tool, known: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Required parameters only; then with a prompt in the first free-text parameter, if there is one."""
    schema = tool["inputSchema"]
    properties: dict[str, Any] = schema.get("properties", {})
    required = {name: known.get(name, _sample(properties.get(name, {}))) for name in schema.get("required", [])}
    free_text = next(
        (
            name
            for name, prop in properties.items()
            if name not in required and prop.get("type") == "string" and "enum" not in prop
        ),
        None,
    )
    return [required] if free_text is None else [required, {**required, free_text: SAMPLE_TEXT}]


def same_arguments(outcomes: Outcomes) -> Candidates:
    """The arguments that worked in `outcomes`, with required values taken from this run's earlier results."""

    def candidates(tool: Tool, known: Mapping[str, Any]) -> list[dict[str, Any]]:
        arguments, _ = outcomes[tool["name"]]
        required = tool["inputSchema"].get("required", [])
        return [{name: known.get(name, value) if name in required else value for name, value in arguments.items()}]

    return candidates


def _in_order(tools: list[Tool]) -> list[Tool]:
    """The tools as listed, except that a tool requiring what another tool returns comes after it."""
    returns = {tool["name"]: set(tool.get("outputSchema", {}).get("properties", {})) for tool in tools}

    def needs(tool: Tool) -> set[str]:
        others = set().union(*(fields for name, fields in returns.items() if name != tool["name"]))
        return set(tool["inputSchema"].get("required", [])) & others

    ordered: list[Tool] = []
    provided: set[str] = set()
    remaining = list(tools)
    while remaining:
        tool = next((tool for tool in remaining if needs(tool) <= provided), remaining[0])  # a cycle: go on anyway
        ordered.append(tool)
        provided |= returns[tool["name"]]
        remaining.remove(tool)
    return ordered


def _sample(schema: Mapping[str, Any]) -> Any:
    """A valid value of a simple schema: the first enum value, the minimum, or some text."""
    for branch in schema.get("anyOf", []):
        if branch.get("type") != "null":
            return _sample(branch)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    if "https?://" in schema.get("pattern", ""):  # a URL (read_url)
        return "https://example.com/sample"
    return SAMPLE_TEXT
