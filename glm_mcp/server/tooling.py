"""Registering tools whose inputs are pydantic models, published as flat parameters.

Each tool is written as `async def handler(app, ctx, args) -> ResultModel`. `model_tool`
gives it a signature made of the model's fields (so the SDK publishes a flat input schema),
validates the arguments against the model itself (so a wrong type, a value out of range and an
unknown argument name get the same structured `invalid_argument` result as a rule across
fields), turns its result into `structuredContent` plus a text copy, and turns any failure into
an `isError` result that says what to do: one success path and one error path for every tool.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Protocol, TypeVar, cast

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp.types import CallToolResult, Icon, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, WithJsonSchema
from pydantic.fields import FieldInfo

from glm_mcp.server.arguments import ArgumentError
from glm_mcp.server.results import ToolFailure


class Renderable(Protocol):
    def to_text(self) -> str: ...
    def model_dump(self, *, mode: str, exclude_none: bool = ...) -> dict[str, Any]: ...


ArgsT = TypeVar("ArgsT", bound=BaseModel)
StateT = TypeVar("StateT")
Handler = Callable[[StateT, Context, ArgsT], Awaitable[Any]]
FailureHook = Callable[[StateT, BaseException], Awaitable[ToolFailure]]
RequestState = Callable[[StateT, Context], StateT]


def model_tool(
    handler: Handler[StateT, ArgsT],
    *,
    arguments: type[ArgsT],
    result: type[BaseModel],
    on_failure: FailureHook[StateT],
    for_request: RequestState[StateT],
    name: str,
    title: str,
    description: str,
    annotations: ToolAnnotations,
    icons: list[Icon] | None = None,
) -> Tool:
    """`handler` as the tool `name`, taking the fields of `arguments` as its parameters."""

    async def tool(ctx: Context, **kwargs: Any) -> CallToolResult:
        state = cast(StateT, ctx.request_context.lifespan_context)
        try:
            state = for_request(state, ctx)
            raw = published.pre_parse_json(kwargs[_RAW])  # as the SDK would: lists that arrive as JSON text
            try:
                args = arguments.model_validate(raw)
            except ValidationError as exc:
                raise ArgumentError.from_validation(exc, arguments) from None
            outcome = await handler(state, ctx, args)
        except Exception as exc:
            failure = await on_failure(state, exc)
            return _result(failure, is_error=True)
        return _result(outcome, is_error=False)

    parameters = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)]
    parameters += [
        inspect.Parameter(
            field_name,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=_published(field),
            default=inspect.Parameter.empty if field.is_required() else field.default,
        )
        for field_name, field in arguments.model_fields.items()
    ]
    tool.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        parameters, return_annotation=Annotated[CallToolResult, result]
    )
    tool.__name__ = name
    registered = Tool.from_function(
        tool, name=name, title=title, description=description, annotations=annotations, icons=icons
    )
    registered.fn_metadata.output_schema = _result_or_failure(result)
    published = registered.fn_metadata.model_copy()
    registered.fn_metadata.arg_model = _AsGiven  # read live by the SDK: it now passes the arguments through
    return registered


_RAW = "_arguments_as_given"


class _AsGiven(ArgModelBase):
    """The SDK's argument model for our tools: every argument passes through unchecked, so the tool's
    own model checks them all and every mistake is answered the same way."""

    model_config = ConfigDict(extra="allow")

    def model_dump_one_level(self) -> dict[str, Any]:
        return {_RAW: dict(self.model_extra or {})}


def _result_or_failure(result: type[BaseModel]) -> dict[str, Any]:
    """The published output schema: the tool's result, or the `ToolFailure` an error result carries.

    Every `structuredContent` the tool sends then conforms to its `outputSchema`, error results
    included (clients such as the MCP Inspector check those too). The server still checks a
    successful result against `result` alone.
    """
    either: Any = result | ToolFailure
    schema = TypeAdapter[Any](either).json_schema()
    return {"type": "object", **schema}


def _result(model: Renderable, *, is_error: bool) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=model.to_text())],
        structured_content=model.model_dump(mode="json", exclude_none=is_error),
        is_error=is_error,
    )


def _published(field: FieldInfo) -> Any:
    """The parameter annotation for a model field: its type, constraints and description.

    Nested models are inlined into the parameter's schema: several MCP clients do not follow
    `$ref`, and a self-contained schema is easier for a model to read.
    """
    annotation: Any = Annotated[(field.annotation, *field.metadata, Field(description=field.description))]
    schema = TypeAdapter(annotation).json_schema()
    if "$defs" in schema:
        annotation = Annotated[(annotation, WithJsonSchema(_inline_refs(schema)))]
    return annotation


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                target = resolve(definitions[ref.removeprefix("#/$defs/")])
                return {**target, **{k: resolve(v) for k, v in node.items() if k != "$ref"}}
            # A discriminator mapping names $defs entries; the inlined oneOf says the same by itself.
            return {key: resolve(value) for key, value in node.items() if key != "discriminator"}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    inlined: dict[str, Any] = resolve(schema)
    return inlined
