"""Function calling and knowledge-base retrieval in `chat` and `submit_async`.

The caller declares functions (name, description, JSON-Schema parameters); each is checked before
anything is sent, its parameters against the JSON Schema meta-schema, so a schema the platform would
refuse (or silently misread) is refused here with the field at fault. What that check may cost is
bounded first (`schema_bounds`: size, values, nesting, arrays the meta-schema wants unique, drafts), and
the check itself runs in a worker thread with a time limit (`Functions.check_schemas`), so a costly schema
never holds up the other calls of the event loop. The model's calls come back in
the result (`FunctionCallRequest`), arguments parsed when they are JSON; the caller runs them and sends
the results back as `tool` messages. A `knowledge_id` adds the platform's `retrieval` tool.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Annotated, Any

import anyio
import anyio.to_thread
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from glm_mcp.errors import ArgumentError
from glm_mcp.glm import models
from glm_mcp.glm.types import (
    FUNCTION_NAME_PATTERN,
    ChatRequest,
    FunctionDefinition,
    FunctionTool,
    RetrievalOptions,
    RetrievalTool,
    ToolCall,
)

__all__ = [
    "ACCEPTED_DRAFTS",
    "FUNCTIONS_SCHEMA",
    "MAX_FUNCTIONS",
    "MAX_SCHEMA_CHARS",
    "MAX_SCHEMA_DEPTH",
    "MAX_SCHEMA_VALUES",
    "MAX_UNORDERED_ITEMS",
    "SCHEMA_CHECK_SECONDS",
    "FunctionCallRequest",
    "FunctionSpec",
    "Functions",
    "feed_back",
    "schema_bounds",
    "wire_tool_calls",
]

MAX_FUNCTIONS = 128
"""The platform's limit on the tools of one request."""

MAX_SCHEMA_CHARS = 65_536
"""The most characters one function's `parameters` may take as compact JSON."""
MAX_SCHEMA_VALUES = 2_000
"""The most JSON values (objects, arrays, strings, numbers, booleans, nulls) in one function's `parameters`:
checking a schema costs about 0.3 ms per subschema under 2020-12, so this keeps one function's check under a second."""
MAX_SCHEMA_DEPTH = 32
"""The deepest nesting of objects and arrays in one function's `parameters` (the checker recurses)."""
MAX_UNORDERED_ITEMS = 100
"""The most items of an array whose items are not all strings or all numbers. Where the meta-schema wants an
array's items unique (`type`, `required`; `enum` in draft-04), the checker compares such items pair by pair,
a cost that grows with the square of the length (1,500 objects: seconds); strings or numbers are sorted instead."""
ACCEPTED_DRAFTS: dict[str, str] = {
    "https://json-schema.org/draft/2020-12/schema": "2020-12",
    "https://json-schema.org/draft/2019-09/schema": "2019-09",
    "http://json-schema.org/draft-07/schema": "draft-07",
    "http://json-schema.org/draft-06/schema": "draft-06",
}
"""The `$schema` a function's `parameters` may declare (2020-12 when it declares none). Draft-04 and older read
keywords differently (a boolean `exclusiveMinimum`, `id`), which the platform would misread, and want `enum`
items unique, the pairwise check above."""
SCHEMA_CHECK_SECONDS = 5.0
"""How long checking one call's functions against the meta-schema may take, in its worker thread."""
_SHOWN_CHARS = 300
"""How much of the checker's complaint an error quotes (it may repeat a whole array)."""


def schema_bounds(schema: dict[str, Any]) -> None:
    """Refuse, with a `ValueError` naming the bound, a schema whose check would cost more than it may.

    Linear in the schema and stopping at the first bound passed, so it is cheap enough to run on the event loop.
    """
    declared = schema.get("$schema")
    if declared is not None and (not isinstance(declared, str) or declared.removesuffix("#") not in ACCEPTED_DRAFTS):
        accepted = ", ".join(ACCEPTED_DRAFTS.values())
        raise ValueError(
            f"$schema {declared!r} is not a draft this server checks; accepted: {accepted} (2020-12 when "
            "$schema is left out). Draft-04 and older read keywords differently; declare draft-07 or later"
        )
    pending: list[tuple[object, str, int]] = [(schema, "", 1)]
    values = 0
    while pending:
        value, path, depth = pending.pop()
        values += 1
        if values > MAX_SCHEMA_VALUES:
            raise ValueError(
                f"it holds over {MAX_SCHEMA_VALUES:,} JSON values, the most one function's parameters may hold; "
                "describe them more briefly"
            )
        if isinstance(value, dict | list) and depth > MAX_SCHEMA_DEPTH:
            raise ValueError(f"it nests deeper than {MAX_SCHEMA_DEPTH} levels, the most allowed (at {path})")
        if isinstance(value, dict):
            pending.extend((item, f"{path}/{key}", depth + 1) for key, item in value.items())
        elif isinstance(value, list):
            if len(value) > MAX_UNORDERED_ITEMS and not _orderable(value):
                raise ValueError(
                    f"the array at {path or '/'} holds {len(value):,} items that are not all strings or all numbers; "
                    f"such an array may hold at most {MAX_UNORDERED_ITEMS} (checking it costs the square of its length)"
                )
            pending.extend((item, f"{path}/{index}", depth + 1) for index, item in enumerate(value))
    size = len(json.dumps(schema, ensure_ascii=False, separators=(",", ":")))
    if size > MAX_SCHEMA_CHARS:
        raise ValueError(
            f"it is {size:,} characters of JSON, over the limit of {MAX_SCHEMA_CHARS:,}; describe the parameters "
            "more briefly"
        )


def _orderable(items: list[Any]) -> bool:
    """Whether the checker can sort `items` to find duplicates (all strings, or all numbers)."""
    if all(isinstance(item, str) for item in items):
        return True
    return all(isinstance(item, int | float) and not isinstance(item, bool) for item in items)


class FunctionSpec(BaseModel):
    """One function the model may ask to call."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    name: Annotated[str, Field(pattern=FUNCTION_NAME_PATTERN)]
    description: Annotated[str, Field(max_length=4096)] = ""
    parameters: dict[str, Any] | None = None

    @field_validator("parameters")
    @classmethod
    def _bounded_object_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        """The cheap checks; the meta-schema's is `Functions.check_schemas`, off the event loop."""
        if value is None:
            return None
        schema_bounds(value)
        if value.get("type", "object") != "object":
            raise ValueError('the parameters must be an object schema ({"type": "object", "properties": …})')
        return value

    def tool(self) -> FunctionTool:
        return FunctionTool(
            function=FunctionDefinition(
                name=self.name, description=self.description or None, parameters=self.parameters
            )
        )


def _check_against_meta_schemas(schemas: Sequence[tuple[int, dict[str, Any]]], stop: threading.Event) -> None:
    """Run in a worker thread: the first schema that breaks its meta-schema, as an `ArgumentError`."""
    import jsonschema  # at first use: ~37 ms of every cold start otherwise, for a call few make

    for index, schema in schemas:
        if stop.is_set():  # the caller has been answered (time limit) or has gone
            return
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            where = "/".join(str(part) for part in exc.absolute_path) or "the schema"
            said = exc.message if len(exc.message) <= _SHOWN_CHARS else f"{exc.message[:_SHOWN_CHARS]}…"
            raise ArgumentError(f"tools[{index}].parameters", f"not a valid JSON Schema at {where}: {said}.") from None


FUNCTIONS_SCHEMA: dict[str, object] = {
    "type": "array",
    "items": {"type": "object"},
    "description": "Functions it may call: {name, description, parameters: JSON Schema}.",
}
"""The published shape of `tools`: its description says the shape; `FunctionSpec` checks what arrives."""


class Functions(BaseModel):
    """What the model may call besides answering: the caller's functions, a knowledge base."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    tools: Annotated[list[FunctionSpec] | None, Field(max_length=MAX_FUNCTIONS), WithJsonSchema(FUNCTIONS_SCHEMA)] = (
        None
    )
    knowledge_id: Annotated[str, Field(description="A knowledge base to answer from.", max_length=100)] = ""
    knowledge_prompt: Annotated[str, Field(description="Template: {{knowledge}}, {{question}}.", max_length=4096)] = ""

    async def check_schemas(self) -> None:
        """Check each function's `parameters` against its draft's meta-schema, in a worker thread.

        The event loop goes on serving other calls meanwhile. Past SCHEMA_CHECK_SECONDS the call is refused and the
        thread stops before its next function (`schema_bounds` keeps one function's check short).
        """
        schemas = [(index, spec.parameters) for index, spec in enumerate(self.tools or ()) if spec.parameters]
        if not schemas:
            return
        stop = threading.Event()
        try:
            with anyio.fail_after(SCHEMA_CHECK_SECONDS):
                await anyio.to_thread.run_sync(_check_against_meta_schemas, schemas, stop, abandon_on_cancel=True)
        except TimeoutError:
            raise ArgumentError(
                "tools",
                f"checking the functions' parameters against the JSON Schema meta-schema took over "
                f"{SCHEMA_CHECK_SECONDS:g} s, the limit; send fewer or simpler schemas.",
            ) from None
        finally:
            stop.set()

    def add_tools(self, request: ChatRequest) -> None:
        """Put the functions and the knowledge base into `request`."""
        if self.knowledge_prompt and not self.knowledge_id:
            raise ArgumentError("knowledge_prompt", "it needs a `knowledge_id`.")
        names = [spec.name for spec in self.tools or ()]
        if len(set(names)) != len(names):
            twice = next(name for name in names if names.count(name) > 1)
            raise ArgumentError("tools", f"two functions are named {twice!r}; names must be unique.")
        tools: list[FunctionTool | RetrievalTool] = [spec.tool() for spec in self.tools or ()]
        if self.knowledge_id:
            options = RetrievalOptions(knowledge_id=self.knowledge_id, prompt_template=self.knowledge_prompt or None)
            tools.append(RetrievalTool(retrieval=options))
        if not tools:
            return
        request.tools = [*(request.tools or ()), *tools]
        request.tool_choice = "auto"  # the platform's only choice, said as its SDKs say it; no argument chooses it
        if self.tools and models.streams_tool_calls(request.model):
            request.tool_stream = True  # sent only with a stream; the client drops it otherwise


def wire_tool_calls(value: object) -> object:
    """An assistant message's `tool_calls` as the platform takes them, also when written as a result gave them
    (`{id, name, arguments}`, arguments an object or text): an agent can send back what it read."""
    if not isinstance(value, list):
        return value
    calls: list[object] = []
    for call in value:
        if isinstance(call, dict) and "function" not in call and "name" in call:
            arguments = call.get("arguments", call.get("raw_arguments", ""))
            text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
            call = {"id": call.get("id", ""), "type": "function", "function": {"name": call["name"], "arguments": text}}
        calls.append(call)
    return calls


class FunctionCallRequest(BaseModel):
    """A function call the model wants made: run it, then send its result back as a `tool` message."""

    model_config = ConfigDict(defer_build=True)

    id: str = Field(description="Answer it with a tool message whose tool_call_id is this.")
    name: str
    arguments: dict[str, Any] | None = Field(None, description="The arguments, parsed from the model's JSON.")
    raw_arguments: str | None = Field(
        None, description="Present only when the model's arguments are not a JSON object: its text as written."
    )
    arguments_error: str | None = Field(None, description="Why raw_arguments could not be parsed.")

    @classmethod
    def from_call(cls, call: ToolCall) -> FunctionCallRequest:
        text = call.function.arguments
        try:
            parsed = json.loads(text) if text.strip() else {}
        except ValueError as exc:
            return cls(id=call.id, name=call.function.name, raw_arguments=text, arguments_error=f"not JSON: {exc}")
        if not isinstance(parsed, dict):
            return cls(
                id=call.id, name=call.function.name, raw_arguments=text, arguments_error="JSON, but not an object"
            )
        return cls(id=call.id, name=call.function.name, arguments=parsed)

    def to_text(self) -> str:
        if self.arguments_error:
            return f"- {self.name} [id {self.id}] with arguments that are {self.arguments_error}: {self.raw_arguments}"
        return f"- {self.name}({json.dumps(self.arguments, ensure_ascii=False)}) [id {self.id}]"


FEED_BACK = (
    "Run each of tool_calls, then call {tool} again with messages: this conversation, then "
    '{{"role": "assistant", "tool_calls": <tool_calls as given>}}, then for each call '
    '{{"role": "tool", "tool_call_id": <its id>, "content": <its result>}}.'
)
"""The next step of a result that asks for function calls."""


def feed_back(tool: str) -> str:
    return FEED_BACK.format(tool=tool)
