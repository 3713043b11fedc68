"""The argument field groups the tools combine, and the one request id every upstream request carries.

Each group is a pydantic model of fields (a conversation, generation options, how long to wait, the
files to send, the conversation to continue, which page to read); a tool's argument model combines
the groups it takes (`tools/chat.py`: `ChatArguments`, …), so tools that take the same inputs cannot
drift apart. `glm_mcp.server.registration` publishes each model's fields as the tool's flat parameters
and checks what arrives against the model; rules across fields are checked where the request is
built, before anything is sent upstream.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from glm_mcp.config import Settings
from glm_mcp.errors import ArgumentError
from glm_mcp.glm.types import ChatRequest, Message, Thinking
from glm_mcp.tools.functions import wire_tool_calls

__all__ = [
    "MESSAGES_SCHEMA",
    "Arguments",
    "Attached",
    "Continued",
    "Conversation",
    "Generation",
    "JobWaiting",
    "Paging",
    "Reasoning",
    "Waiting",
    "new_request_id",
]


class Arguments(BaseModel):
    """A tool's arguments: an argument of no known name is a mistake, said as one. Built on first use, like every
    model of the tools (`defer_build`): start reads the published schemas (`glm_mcp.tools.SCHEMAS_FILE`)."""

    model_config = ConfigDict(defer_build=True, extra="forbid")


MESSAGES_SCHEMA: dict[str, object] = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["role"],
        "properties": {
            "role": {"enum": ["system", "user", "assistant", "tool"]},
            "content": {
                "description": 'Text, or parts: {"type":"text","text":…}, {"type":"image_url","image_url":{"url":…}}, '
                "video_url, file_url.",
            },
            "tool_call_id": {"type": "string", "description": "Role tool: the call's id."},
            "tool_calls": {"type": "array", "description": "role assistant: its tool_calls."},
        },
    },
}
"""The published shape of `messages`: what a model needs to write one. The full wire model
(`glm.types.Message`, every part type and field) still checks what arrives."""


class Conversation(Arguments):
    """The input of a chat: one prompt, or a whole message list."""

    prompt: Annotated[
        str,
        Field(description="The message. Give this or `messages`."),
    ] = ""
    messages: Annotated[
        list[Message] | None,
        Field(description="Instead of `prompt`: the conversation, oldest first.", min_length=1),
        WithJsonSchema(MESSAGES_SCHEMA),
    ] = None

    @field_validator("messages", mode="before")
    @classmethod
    def _wire_tool_calls(cls, value: object) -> object:
        """An assistant's tool_calls may be sent back as a result gave them."""
        if not isinstance(value, list):
            return value
        return [
            {**m, "tool_calls": wire_tool_calls(m["tool_calls"])} if isinstance(m, dict) and "tool_calls" in m else m
            for m in value
        ]

    def conversation(self, system: str) -> list[Message]:
        """The messages to send, with `system` in front; raises `ArgumentError` on a bad combination."""
        prompt = self.prompt.strip()
        if prompt and self.messages:
            raise ArgumentError("messages", "give either `prompt` or `messages`, not both.")
        if self.messages is None:
            if not prompt:
                raise ArgumentError("prompt", "it is empty; give the text to send (or a `messages` list).")
            messages = [Message(role="user", content=self.prompt)]
        else:
            messages = list(self.messages)
            _check_messages(messages)
        if system.strip():
            if messages[0].role == "system":
                raise ArgumentError("system", "`messages` already starts with a system message; give it once.")
            messages.insert(0, Message(role="system", content=system))
        return messages


def _check_messages(messages: list[Message]) -> None:
    """The platform's own rules for a message list (it answers 1214 otherwise)."""
    for index, message in enumerate(messages):
        if message.role == "tool" and not message.tool_call_id:
            raise ArgumentError(
                f"messages[{index}].tool_call_id", "a tool message needs the id of the call it answers."
            )
    if not any(message.role == "user" for message in messages):
        raise ArgumentError("messages", "it needs at least one message with role 'user'.")


class Generation(Arguments):
    """How the model generates: which model, sampling, length and format."""

    system: Annotated[str, Field(description="A system prompt.")] = ""
    model: Annotated[
        str,
        Field(
            description="e.g. {GLM_MODEL}, {GLM_VISION_MODEL} (images). Empty: GLM_MODEL.",
            max_length=100,
        ),
    ] = ""
    temperature: Annotated[
        float | None,
        Field(description="0 (deterministic) to 1.", ge=0, le=1),
    ] = None
    top_p: Annotated[float | None, Field(description="Nucleus sampling mass.", ge=0, le=1)] = None
    max_tokens: Annotated[int | None, Field(description="Most tokens to write.", ge=1, le=131_072)] = None
    stop: Annotated[
        str | Annotated[list[str], Field(max_length=4)] | None,
        Field(description="Stop text, or a list of up to 4."),
    ] = None
    thinking: Annotated[
        Literal["enabled", "disabled"] | None,
        Field(description="Deep thinking, default on."),
    ] = None
    do_sample: Annotated[bool | None, Field(description="false: greedy decoding.")] = None

    def stop_words(self) -> list[str] | None:
        """`stop` as the platform's list: one stop word may be given as a string (as the platform's SDKs take it)."""
        words = [self.stop] if isinstance(self.stop, str) else self.stop
        return None if not words or words == [""] else words

    def to_request(self, messages: list[Message], settings: Settings) -> ChatRequest:
        """The GLM request for `messages`, with these options applied (its size is the workspace's to check,
        once the files and the conversation's turns are in: `workspace.prepare`)."""
        temperature, do_sample = self.temperature, self.do_sample
        # The official SDKs send neither bound as is: 0 becomes greedy decoding, 1 becomes 0.99.
        if temperature is not None and temperature <= 0:
            temperature, do_sample = 0.01, False if do_sample is None else do_sample
        elif temperature is not None and temperature >= 1:
            temperature = 0.99
        top_p = None if self.top_p is None else min(max(self.top_p, 0.01), 0.99)
        model = self.model.strip() or settings.models.default
        return ChatRequest(
            model=model,
            messages=messages,
            temperature=temperature,
            top_p=top_p,
            do_sample=do_sample,
            max_tokens=self.max_tokens,
            stop=self.stop_words(),
            thinking=Thinking(type=self.thinking) if self.thinking else None,
            request_id=new_request_id(),
        )


def _wait_field(description: str) -> object:
    return Field(description=description + " Default 45 (GLM_WAIT_SECONDS).", ge=0, le=3600)


class _Waiting(Arguments):
    """How long a call waits before answering with what it has."""

    wait_seconds: float | None = None

    def wait(self, default: float) -> float:
        return default if self.wait_seconds is None else self.wait_seconds


class Waiting(_Waiting):
    """How long `chat` and `web_search_chat` wait before handing back a job."""

    wait_seconds: Annotated[
        float | None,
        _wait_field("Seconds to wait; then status running with the text so far."),
    ] = None


class JobWaiting(_Waiting):
    """How long `get_result` waits for a job to end."""

    wait_seconds: Annotated[
        float | None,
        _wait_field("Seconds to wait; then status running: call again."),
    ] = None


class Reasoning(Arguments):
    """How much of the model's reasoning the result carries."""

    include_reasoning: Annotated[bool, Field(description="The reasoning whole, not its start.")] = False


class Attached(Arguments):
    """Files sent with the message, read by the server from the workspace (`glm_mcp.tools.workspace.files`)."""

    files: Annotated[
        list[str] | None,
        Field(description="File paths or globs (images: vision models; PDF, Office, WAV, MP3: as text)."),
    ] = None


class Continued(Arguments):
    """Which earlier conversation a chat continues (`glm_mcp.tools.workspace`)."""

    conversation_id: Annotated[
        str,
        Field(description="Continue this earlier conversation."),
    ] = ""
    from_turn: Annotated[int | None, Field(description="Branch from this turn of it.", ge=1)] = None


class Paging(Arguments):
    """Which part of a long answer to read."""

    offset: Annotated[int, Field(description="A long answer's next_offset.", ge=0)] = 0


def new_request_id() -> str:
    """Our own id for each upstream request, so a call can be traced even when no answer came back."""
    return f"glm-mcp-{uuid.uuid4().hex}"
