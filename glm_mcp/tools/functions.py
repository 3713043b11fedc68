"""Function calling and knowledge-base retrieval in `chat` and `submit_async`.

The caller declares functions (name, description, JSON-Schema parameters); each is checked before
anything is sent, its parameters against the JSON Schema meta-schema, so a schema the platform would
refuse (or silently misread) is refused here with the field at fault. The model's calls come back in
the result (`FunctionCallRequest`), arguments parsed when they are JSON; the caller runs them and sends
the results back as `tool` messages. A `knowledge_id` adds the platform's `retrieval` tool.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

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

MAX_FUNCTIONS = 128
"""The platform's limit on the tools of one request."""


class FunctionSpec(BaseModel):
    """One function the model may ask to call."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(pattern=FUNCTION_NAME_PATTERN)]
    description: Annotated[str, Field(max_length=4096)] = ""
    parameters: dict[str, Any] | None = None

    @field_validator("parameters")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        import jsonschema  # at first use: ~37 ms of every cold start otherwise, for a call few make

        try:
            jsonschema.validators.validator_for(value).check_schema(value)
        except jsonschema.SchemaError as exc:
            where = "/".join(str(part) for part in exc.absolute_path) or "the schema"
            raise ValueError(f"not a valid JSON Schema at {where}: {exc.message}") from None
        if value.get("type", "object") != "object":
            raise ValueError('the parameters must be an object schema ({"type": "object", "properties": …})')
        return value

    def tool(self) -> FunctionTool:
        return FunctionTool(
            function=FunctionDefinition(
                name=self.name, description=self.description or None, parameters=self.parameters
            )
        )


FUNCTIONS_SCHEMA: dict[str, object] = {
    "type": "array",
    "items": {"type": "object"},
    "description": "Functions it may call: {name, description, parameters: JSON Schema}.",
}
"""The published shape of `tools`: its description says the shape; `FunctionSpec` checks what arrives."""


class Functions(BaseModel):
    """What the model may call besides answering: the caller's functions, a knowledge base."""

    model_config = ConfigDict(extra="forbid")

    tools: Annotated[list[FunctionSpec] | None, Field(max_length=MAX_FUNCTIONS), WithJsonSchema(FUNCTIONS_SCHEMA)] = (
        None
    )
    tool_choice: Annotated[
        Literal["auto"] | None, WithJsonSchema({"const": "auto", "description": "auto, the only choice."})
    ] = None
    knowledge_id: Annotated[str, Field(description="A knowledge base to answer from.", max_length=100)] = ""
    knowledge_prompt: Annotated[str, Field(description="Template: {{knowledge}}, {{question}}.", max_length=4096)] = ""

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
            if self.tool_choice:
                raise ArgumentError("tool_choice", "it needs `tools` or a `knowledge_id`.")
            return
        request.tools = [*(request.tools or ()), *tools]
        request.tool_choice = self.tool_choice
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
