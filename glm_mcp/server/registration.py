"""Registering tools: each a `ToolSpec`, its inputs a pydantic model published as flat parameters.

A tool's handler is `async def handler(app, ctx, args) -> Result`. `register` publishes the model's
fields as a flat, lean input schema, validates the arguments against the model itself (so a wrong type, a
value out of range and an unknown argument name get the same structured `invalid_argument` result as a
rule across fields), turns its result into `structuredContent` plus a text copy, and turns any failure
into an `isError` result that says what to do: one success path and one error path for every tool. The
tools themselves are `glm_mcp.tools`; nothing here knows one by name. A server lists them from what it
knows at start (`ListedTool`: texts and schemas made once) and loads a tool's spec on its first call
(`ToolTable`), so that starting builds none of their models.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, TypeVar, cast, get_args

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.types import CallToolResult, InputRequiredResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from glm_mcp.errors import ArgumentError
from glm_mcp.jobs import ChatKind, Job, JobRecord
from glm_mcp.server.confirmation import InputRequired
from glm_mcp.server.failures import ToolFailure
from glm_mcp.server.result import Result
from glm_mcp.server.state import AppState
from glm_mcp.server.task_offer import HandOff, report_hand_off

__all__ = [
    "ASKS",
    "CHAT_KINDS",
    "LISTS",
    "LOOKS_UP",
    "STARTS",
    "Handler",
    "ListedTool",
    "LoneSurrogate",
    "TaskForm",
    "TaskState",
    "TaskStatus",
    "ToolSpec",
    "ToolTable",
    "argument_error",
    "configured",
    "input_schema",
    "lean_schema",
    "lone_surrogate",
    "output_schema",
    "parse_arguments",
    "register",
    "sdk_tool",
    "tool_result",
]

Handler = Callable[[AppState, Context, Any], Awaitable[Result]]
"""`async def handler(app, ctx, args) -> Result`: the state of this request, the SDK's context, the arguments."""

TaskStatus = Literal["working", "completed", "cancelled"]
CHAT_KINDS: frozenset[str] = frozenset(get_args(ChatKind))
"""The jobs a server process generates (a chat that outlived its wait): what a task follows unless its form says."""

ASKS = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
"""Asks the platform and changes nothing (each answer may differ)."""
STARTS = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
"""Starts work on the platform: calling twice starts it twice."""
LOOKS_UP = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=True)
"""Reads a job's state, here or on the platform."""
LISTS = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
"""Reads this server's own records only."""


@dataclass(frozen=True, slots=True)
class TaskState:
    """A task as its job stands: working on, or ended with the call's final result (none when cancelled)."""

    status: TaskStatus
    message: str
    result: CallToolResult | None = None


@dataclass(frozen=True, slots=True)
class TaskForm:
    """How a tool's call may be answered as an MCP task (`server/tasks.py`): it hands off a job (its result
    says which, `Result.handed_off`), and the task follows that job to the call's final result."""

    suffix: str
    """Its tasks' ids are the job's id and this: "" for the tool whose call started the job, else another
    suffix for each tool that follows one, since the task ends with that tool's own result."""
    offered: Callable[[Mapping[str, Any]], bool]
    """Whether a call with these arguments may become a task (its wait is then cut to the task threshold)."""
    final: Callable[[AppState, Job | JobRecord], Awaitable[TaskState]]
    """The task of a job that has ended: in this process (its `Job`), or as the registry has it (its record). For a
    job no server process generates (`follows` beyond the chat kinds), also the task of its running record."""
    follows: frozenset[str] = CHAT_KINDS
    """The kinds of job its tasks follow: a chat a server process generates, or a job the platform runs (a batch),
    whose task is read from its record."""
    cancel: Callable[[AppState, JobRecord], Awaitable[None]] | None = None
    """How tasks/cancel stops a running job that no server process generates (a platform batch); None: only a job
    generated in the process asked can be stopped."""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One row of the tool table (`glm_mcp.tools.table.TOOLS`): everything that makes a tool, declared once."""

    name: str
    title: str
    description: str
    handler: Handler
    arguments: type[BaseModel]
    result: type[Result]
    annotations: ToolAnnotations
    toolset: str = "core"
    """Which toolset offers it (GLM_MCP_TOOLSETS, `config.TOOLSETS`)."""
    task: TaskForm | None = None
    """How its call may become an MCP task; None for a tool whose calls never do."""


@dataclass(frozen=True, slots=True)
class ListedTool:
    """What a server knows of a tool before its room is imported: what `tools/list` says of it (its
    texts, annotations and published schemas), its toolset and the suffix of its tasks.

    Making one from a spec (`of`) builds every model its schemas name, which was most of what a tool cost
    at start; the tool table keeps them made once, as JSON (`glm_mcp.tools.LISTING_FILE`).
    """

    name: str
    title: str
    description: str
    annotations: ToolAnnotations
    toolset: str
    task_suffix: str | None
    """Its `TaskForm.suffix`; None for a tool whose calls never become tasks."""
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]

    @classmethod
    def of(cls, spec: ToolSpec) -> ListedTool:
        """`spec` listed, its schemas made from its models (`input_schema`, `output_schema`)."""
        return cls(
            name=spec.name,
            title=spec.title,
            description=spec.description,
            annotations=spec.annotations,
            toolset=spec.toolset,
            task_suffix=None if spec.task is None else spec.task.suffix,
            input_schema=input_schema(spec.arguments),
            output_schema=output_schema(spec.result),
        )

    def to_json(self) -> dict[str, Any]:
        """This listing as JSON, its keys spelt as `tools/list` spells them."""
        listed = {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "annotations": self.annotations.model_dump(mode="json", by_alias=True, exclude_none=True),
            "toolset": self.toolset,
            "inputSchema": self.input_schema,
            "outputSchema": self.output_schema,
        }
        return listed if self.task_suffix is None else {**listed, "taskSuffix": self.task_suffix}

    @classmethod
    def from_json(cls, listed: Mapping[str, Any]) -> ListedTool:
        """The listing `to_json` wrote."""
        return cls(
            name=listed["name"],
            title=listed["title"],
            description=listed["description"],
            annotations=ToolAnnotations.model_validate(listed["annotations"]),
            toolset=listed["toolset"],
            task_suffix=listed.get("taskSuffix"),
            input_schema=listed["inputSchema"],
            output_schema=listed["outputSchema"],
        )


class ToolTable:
    """The tools a server offers: listed from what it knows at start (`ListedTool`), their specs loaded when
    a call first needs one (`load` imports the rooms: the first call pays for that, not every start)."""

    def __init__(self, listed: Iterable[ListedTool], load: Callable[[], Iterable[ToolSpec]]) -> None:
        self.listed = tuple(listed)
        self._load = load
        self._specs: dict[str, ToolSpec] | None = None

    def spec(self, name: str) -> ToolSpec:
        """The spec of the listed tool `name`."""
        if self._specs is None:
            names = {listed.name for listed in self.listed}
            self._specs = {spec.name: spec for spec in self._load() if spec.name in names}
        return self._specs[name]


def register(
    listed: ListedTool, table: ToolTable, *, unoffered: Collection[str] = (), values: Mapping[str, str] | None = None
) -> Tool:
    """The SDK tool for `listed`: its arguments validated once by its own model, its result (or failure) as
    `structuredContent` plus a text copy. Its spec comes from `table` on its first call. Its input schema is this
    configuration's (`configured`): without the arguments named in `unoffered`, which it cannot honour (a call
    that passes one anyway gets the handler's refusal), and with the settings' `values` its descriptions name.

    This is the one seam with the SDK's tool machinery (`sdk_tool`): everything else here is ours.
    """

    async def call(ctx: Context, **kwargs: Any) -> CallToolResult | InputRequiredResult:
        state = cast(AppState, ctx.request_context.lifespan_context)
        try:
            spec = table.spec(listed.name)
            state = state.for_request(ctx)
            args = parse_arguments(spec.arguments, kwargs[_RAW])
            outcome = await spec.handler(state, ctx, args)
        except InputRequired as needed:  # the user is asked first (server/confirmation.py); the call comes again
            return needed.result
        except Exception as exc:
            return tool_result(await state.describe_failure(exc), is_error=True)
        if spec.task is not None and (job_id := outcome.handed_off()) is not None:
            report_hand_off(HandOff(job_id, spec.task.suffix))
        return tool_result(outcome, is_error=False)

    return sdk_tool(
        call,
        name=listed.name,
        title=listed.title,
        description=listed.description,
        annotations=listed.annotations,
        input_schema=configured(listed.input_schema, unoffered=unoffered, values=values),
        output_schema=listed.output_schema,
    )


def sdk_tool(
    call: Callable[..., Awaitable[CallToolResult | InputRequiredResult]],
    *,
    name: str,
    title: str,
    description: str,
    annotations: ToolAnnotations,
    input_schema: dict[str, Any],
    output_schema: dict[str, Any],
) -> Tool:
    """The SDK's `Tool` for `call(ctx, **{_RAW: arguments})`, built from its public fields.

    The SDK derives a tool's schemas from a function's signature; ours come from the models, so the
    `Tool` and its `FuncMetadata` are constructed directly instead of through `Tool.from_function`
    (nothing derived and thrown away, no signature rewritten). `_AsGiven` passes the arguments
    through. No `output_model` is set: the SDK would validate every successful result's
    `structuredContent` again, a dict dumped a moment before from the typed result model that the
    `outputSchema` was generated from (tests/test_model_reads.py checks results against the schemas).
    tests/test_tools.py::test_the_sdk_seam names what broke if an SDK release changes these fields.
    """
    metadata = FuncMetadata(arg_model=_AsGiven, output_schema=output_schema)
    return Tool(
        fn=call,
        name=name,
        title=title,
        description=description,
        parameters=input_schema,
        fn_metadata=metadata,
        is_async=True,
        context_kwarg="ctx",
        annotations=annotations,
    )


ArgsT = TypeVar("ArgsT", bound=BaseModel)


def parse_arguments(model: type[ArgsT], given: dict[str, Any]) -> ArgsT:
    """`given` validated against `model`, once; any mistake is an `ArgumentError`.

    An array or object argument that arrives as JSON text (some clients send them so) is decoded
    first, as the SDK's own validation would. Text that is not Unicode (a lone surrogate, which the
    HTTP transport lets through) is refused here, naming where, before anything stores or sends it.
    """
    decoded = dict(given)
    for key, value in given.items():
        field = model.model_fields.get(key)
        if field is not None and field.annotation is not str and isinstance(value, str):
            with contextlib.suppress(ValueError, RecursionError):
                parsed = json.loads(value)
                if isinstance(parsed, list | dict):
                    decoded[key] = parsed
    if (found := lone_surrogate(decoded)) is not None:
        raise ArgumentError(found.path, f"it {found.said()}.")
    try:
        return model.model_validate(decoded)
    except ValidationError as exc:
        raise argument_error(exc, model) from None


_SURROGATE = re.compile("[\ud800-\udfff]")


def _escaped(text: str) -> str:
    return _SURROGATE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


class LoneSurrogate(NamedTuple):
    """Where a JSON value holds a lone surrogate, and which one: both escaped, so that they can be written out."""

    path: str
    escape: str

    def said(self) -> str:
        """What is wrong, to follow the place's name: "`prompt` holds …"."""
        return (
            f"holds a lone surrogate ({self.escape}), which is no Unicode character (UTF-8 cannot encode it); "
            "send the text as valid Unicode"
        )


def lone_surrogate(value: object, path: str = "") -> LoneSurrogate | None:
    """The first lone surrogate in `value` (JSON as Python's parser reads it, names included), or None.

    `"\\udce9"` is valid JSON, which Python decodes to a code point no UTF-8 text holds: the SDK's stdio
    parser refuses such a line, while over HTTP it reaches the handlers, and SQLite or the JSON sent upstream
    fails on it. A surrogate pair decodes to one character, so any surrogate left is a lone one.
    """
    pending: list[tuple[object, str]] = [(value, path)]
    while pending:
        item, where = pending.pop()
        if isinstance(item, str):
            found = None if item.isascii() else _SURROGATE.search(item)
            if found is not None:
                return LoneSurrogate(_escaped(where) or "the value", _escaped(found.group()))
        elif isinstance(item, dict):
            for name, inner in reversed(item.items()):  # reversed: the first member is looked at first
                member = f"{where}.{name}" if where else str(name)
                pending += [(inner, member), (str(name), member)]
        elif isinstance(item, list):
            pending.extend((inner, f"{where}[{index}]") for index, inner in reversed(list(enumerate(item))))
    return None


def argument_error(error: ValidationError, model: type[BaseModel]) -> ArgumentError:
    """The schema's complaints about arguments for `model` (a wrong type, a value out of range, an unknown
    name), said as the one argument error every other argument mistake is too."""
    problems = error.errors(include_url=False)
    field = _location(problems[0]["loc"])
    said = [_problem(problem, model) for problem in problems]
    if len(said) == 1:
        return ArgumentError(field, said[0])
    return ArgumentError(
        field, " ".join(f"`{_location(p['loc'])}`: {text}" for p, text in zip(problems, said, strict=True))
    )


def _location(loc: tuple[int | str, ...]) -> str:
    """`messages[0].role` for ("messages", 0, "role")."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "arguments"


def _problem(problem: ErrorDetails, model: type[BaseModel]) -> str:
    """What was wrong with one argument and what is allowed, in a sentence."""
    kind, loc = problem["type"], problem["loc"]
    if kind == "extra_forbidden" and len(loc) == 1:
        known = list(model.model_fields)
        close = difflib.get_close_matches(str(loc[0]), known, n=1, cutoff=0.6)
        guess = f" Did you mean `{close[0]}`?" if close else ""
        return f"this tool has no argument of that name.{guess} Its arguments: {', '.join(known)}."
    if kind == "missing":
        return "it is required."
    got = problem.get("input")
    shown = repr(got) if isinstance(got, int | float | bool | None) or (isinstance(got, str) and len(got) <= 40) else ""
    message = problem["msg"].removeprefix("Value error, ")
    return f"{message}{f'; got {shown}' if shown else ''}."


_RAW = "arguments_as_given"


class _AsGiven(ArgModelBase):
    """The SDK's argument model for our tools: every argument passes through unchecked, so the tool's
    own model checks them all and every mistake is answered the same way."""

    model_config = ConfigDict(defer_build=True, extra="allow")

    def model_dump_one_level(self) -> dict[str, Any]:
        return {_RAW: dict(self.model_extra or {})}


def input_schema(arguments: type[BaseModel]) -> dict[str, Any]:
    """The published input schema: flat parameters, self-contained, and lean; as every configuration has it
    before `configured` makes it this one's.

    It is read by a language model, which pays for every character: nested models are inlined
    (several MCP clients do not follow `$ref`), and what says nothing to a reader is dropped
    (`lean_schema`). The arguments are still checked against the full model.
    """
    schema = arguments.model_json_schema()
    published = lean_schema(schema, inline=schema.pop("$defs", {}))
    published.pop("description", None)  # the tool's description says it
    return published


def configured(
    schema: dict[str, Any], *, unoffered: Collection[str] = (), values: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """An input schema (`input_schema`) as this configuration makes it true where it is served: the `unoffered`
    arguments left out, and a description that names a setting as `{GLM_VISION_MODEL}` saying its value in
    `values` (its name is left as written when `values` has none). Plain dict work, cheap at start."""
    properties = {name: prop for name, prop in schema.get("properties", {}).items() if name not in unoffered}
    published = {**schema, "properties": properties} if "properties" in schema else dict(schema)
    if "required" in published:
        published["required"] = [name for name in published["required"] if name not in unoffered]
    filled: dict[str, Any] = _filled(published, {f"{{{name}}}": value for name, value in (values or {}).items()})
    return filled


def _filled(node: Any, values: Mapping[str, str]) -> Any:
    """`node` with each description's `{NAME}` replaced by its value in `values`."""
    if isinstance(node, list):
        return [_filled(item, values) for item in node]
    if not isinstance(node, dict):
        return node
    filled = {key: _filled(item, values) for key, item in node.items()}
    text = filled.get("description")
    if isinstance(text, str) and "{" in text:
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
        filled["description"] = text
    return filled


def lean_schema(
    schema: dict[str, Any], *, inline: Mapping[str, Any] | None = None, drop: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """`schema` without what says nothing to a reader: generated titles, `null` alternatives and the
    `null` and `""` defaults that mean "not given" (results never carry nulls; arguments may leave them
    out), discriminator mappings, and the keywords in `drop`; with `inline`, its references to those
    `$defs` replaced by the definitions."""
    unsaid = _SAYS_NOTHING | drop
    inlined = inline or {}

    def lean(node: Any) -> Any:
        if isinstance(node, list):
            return [lean(item) for item in node]
        if not isinstance(node, dict):
            return node
        while True:
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/") and ref.removeprefix("#/$defs/") in inlined:
                node = {**inlined[ref.removeprefix("#/$defs/")], **{k: v for k, v in node.items() if k != "$ref"}}
                continue
            options = node.get("anyOf")
            if not (isinstance(options, list) and {"type": "null"} in options):
                break
            rest = [option for option in options if option != {"type": "null"}]
            if len(rest) != 1:
                node = {**node, "anyOf": rest}
                break
            node = {**rest[0], **{k: v for k, v in node.items() if k != "anyOf"}}  # optional: absent is "not given"
        kept: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("properties", "$defs") and isinstance(value, dict):  # names, not keywords
                kept[key] = {name: lean(item) for name, item in value.items()}
            elif key not in unsaid and not (key == "default" and value in (None, "")):
                kept[key] = lean(value)
        return kept

    leaned: dict[str, Any] = lean(schema)
    return leaned


_SAYS_NOTHING = frozenset({"title", "discriminator"})


def output_schema(result: type[BaseModel]) -> dict[str, Any]:
    """The published output schema: the tool's result, or the `ToolFailure` an error result carries, in
    the keywords a client validates with and no others.

    Every `structuredContent` the tool sends then conforms to its `outputSchema`, error results
    included (clients such as the MCP Inspector check those too). No descriptions, defaults or titles:
    they validate nothing, a model reads the result itself (and the tool's description), not this
    schema, and a client that lists the tools pays for every byte of them in each `tools/list`. A
    definition used once is written where it is used; only those used more than once stay in `$defs`.
    The server still checks a successful result against `result` alone.
    """
    either: Any = result | ToolFailure
    schema = TypeAdapter[Any](either).json_schema()
    definitions: dict[str, Any] = schema.pop("$defs", {})
    uses = Counter(_references(schema) + _references(definitions))
    once = {name: definition for name, definition in definitions.items() if uses[name] == 1}
    shared = {name: definition for name, definition in definitions.items() if name not in once}
    published = lean_schema({**schema, "$defs": shared} if shared else schema, inline=once, drop=_FOR_A_READER)
    return {"type": "object", **_without_subsumed(published)}


def _without_subsumed(node: Any) -> Any:
    """`node` with every `anyOf` alternative that another alternative accepts wholly left out (a chat result with
    its sources beside one without them: the one without accepts both), so a union says each shape once; and no
    `"type": "string"` beside an enum of strings, no empty `items`, no `additionalProperties: true` (each says
    what is already so)."""
    if isinstance(node, list):
        return [_without_subsumed(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _without_subsumed(value) for key, value in node.items()}
    values = node.get("enum")
    if node.get("type") == "string" and isinstance(values, list) and all(isinstance(v, str) for v in values):
        del node["type"]  # the enum says it: every value is a string
    if node.get("items") == {}:
        del node["items"]  # any item: says nothing
    if node.get("additionalProperties") is True:
        del node["additionalProperties"]  # the default
    options = node.get("anyOf")
    if isinstance(options, list) and len(options) > 1:
        kept = [
            option
            for index, option in enumerate(options)
            if not any(
                _accepts_all_of(other, option) and (not _accepts_all_of(option, other) or other_index < index)
                for other_index, other in enumerate(options)
                if other_index != index
            )
        ]
        if len(kept) == 1 and isinstance(kept[0], dict):
            return {**kept[0], **{key: value for key, value in node.items() if key != "anyOf"}}
        node["anyOf"] = kept
    return node


def _accepts_all_of(wider: Any, narrower: Any) -> bool:
    """Whether the plain object schema `wider` accepts every instance `narrower` does: no more required names,
    and each property it constrains constrained the same way there (neither closes its properties)."""
    plain = {"type", "properties", "required"}
    if not (isinstance(wider, dict) and isinstance(narrower, dict)) or not set(wider) | set(narrower) <= plain:
        return False
    if wider.get("type") != "object" or narrower.get("type") != "object":
        return False
    wide, narrow = wider.get("properties", {}), narrower.get("properties", {})
    return set(wider.get("required", ())) <= set(narrower.get("required", ())) and all(
        name in narrow and narrow[name] == schema for name, schema in wide.items()
    )


def _references(node: Any) -> list[str]:
    """The names of the `$defs` that `node` refers to, once per reference."""
    if isinstance(node, list):
        return [name for item in node for name in _references(item)]
    if not isinstance(node, dict):
        return []
    ref = node.get("$ref")
    here = [ref.removeprefix("#/$defs/")] if isinstance(ref, str) and ref.startswith("#/$defs/") else []
    return here + [name for value in node.values() for name in _references(value)]


_FOR_A_READER = frozenset({"description", "default", "examples"})
"""Keywords that tell a reader about a value and validate nothing (JSON Schema's annotations)."""


def tool_result(model: Result, *, is_error: bool) -> CallToolResult:
    """The `CallToolResult` a tool sends for `model`: its result, or the `ToolFailure` of an error result.

    The one place results are made, so a task's final result (`TaskForm.final`) is the very one the call
    would have returned.
    """
    return CallToolResult(
        content=[TextContent(type="text", text=model.to_text()), *model.extra_content()],
        structured_content=model.structured(),
        is_error=is_error,
    )
