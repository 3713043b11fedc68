"""What each tool accepts, defined once as pydantic models, and how it becomes a GLM request.

The models are groups of fields (a conversation, generation options, web search options) that
tools combine; `glm_mcp.server.tooling` publishes each model's fields as the tool's flat
parameters. Field-level rules (types, ranges) are checked by the SDK against these fields
before a handler runs; rules across fields are checked here, before anything is sent upstream.
"""

from __future__ import annotations

import difflib
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema, field_validator
from pydantic_core import ErrorDetails

from glm_mcp.config import Settings
from glm_mcp.errors import ArgumentError
from glm_mcp.glm.types import (
    ChatRequest,
    ContentSize,
    FilePart,
    ImagePart,
    MediaURL,
    Message,
    RecencyFilter,
    ResponseFormat,
    SearchEngine,
    TextPart,
    Thinking,
    VideoPart,
    WebSearchOptions,
    WebSearchTool,
)
from glm_mcp.jobs import JobState, Position
from glm_mcp.tools.functions import Functions, wire_tool_calls


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


class _Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


class Conversation(_Arguments):
    """The input of a chat: one prompt, or a whole message list."""

    prompt: Annotated[
        str,
        Field(description="The message. Give this or `messages`."),
    ] = ""
    messages: Annotated[
        list[Message] | None,
        Field(description="Instead of `prompt`: the whole conversation, oldest first.", min_length=1),
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


def _check_size(messages: list[Message], limit: int) -> None:
    """Refuse an input larger than GLM_MAX_PROMPT_CHARS before it costs an upload and a refusal."""
    size = 0
    for message in messages:
        if isinstance(message.content, str):
            size += len(message.content)
        elif message.content:
            for part in message.content:
                size += len(part.text) if isinstance(part, TextPart) else len(_media(part).url)
    if size > limit:
        raise ArgumentError(
            "messages" if len(messages) > 1 else "prompt",
            f"the input is {size:,} characters, over the limit of {limit:,} (GLM_MAX_PROMPT_CHARS). "
            "Shorten it or send it in parts.",
        )


def _media(part: ImagePart | VideoPart | FilePart) -> MediaURL:
    if isinstance(part, ImagePart):
        return part.image_url
    return part.video_url if isinstance(part, VideoPart) else part.file_url


class Generation(_Arguments):
    """How the model generates: which model, sampling, length and format."""

    system: Annotated[str, Field(description="A system prompt.")] = ""
    model: Annotated[
        str,
        Field(
            description="e.g. glm-4.6, glm-4.6v (images). Empty: GLM_MODEL.",
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
        list[str] | None,
        Field(description="Stop at this text.", max_length=4),
    ] = None
    thinking: Annotated[
        Literal["enabled", "disabled"] | None,
        Field(description="Deep thinking (GLM-4.5+), default on."),
    ] = None
    do_sample: Annotated[bool | None, Field(description="false: greedy decoding.")] = None

    def to_request(self, messages: list[Message], settings: Settings) -> ChatRequest:
        """The GLM request for `messages`, with these options applied."""
        _check_size(messages, settings.max_prompt_chars)
        temperature, do_sample = self.temperature, self.do_sample
        # The official SDKs send neither bound as is: 0 becomes greedy decoding, 1 becomes 0.99.
        if temperature is not None and temperature <= 0:
            temperature, do_sample = 0.01, False if do_sample is None else do_sample
        elif temperature is not None and temperature >= 1:
            temperature = 0.99
        top_p = None if self.top_p is None else min(max(self.top_p, 0.01), 0.99)
        model = self.model.strip() or settings.default_model
        return ChatRequest(
            model=model,
            messages=messages,
            temperature=temperature,
            top_p=top_p,
            do_sample=do_sample,
            max_tokens=self.max_tokens,
            stop=self.stop or None,
            thinking=Thinking(type=self.thinking) if self.thinking else None,
            request_id=new_request_id(),
        )


def _wait_field(description: str) -> object:
    return Field(description=description + " Default 45 (GLM_WAIT_SECONDS).", ge=0, le=3600)


class _Waiting(_Arguments):
    """How long a call waits before answering with what it has."""

    wait_seconds: float | None = None

    def wait(self, default: float) -> float:
        return default if self.wait_seconds is None else self.wait_seconds


class Waiting(_Waiting):
    """How long `chat` and `web_search_chat` wait before handing back a job."""

    wait_seconds: Annotated[
        float | None,
        _wait_field("Seconds to wait; then status running, the text so far and `next`."),
    ] = None


class JobWaiting(_Waiting):
    """How long `get_result` waits for a job to end."""

    wait_seconds: Annotated[
        float | None,
        _wait_field("Seconds to wait for the end; then status running: call again."),
    ] = None


class Reasoning(_Arguments):
    """How much of the model's reasoning the result carries."""

    include_reasoning: Annotated[bool, Field(description="The reasoning whole, not its start.")] = False


class Attached(_Arguments):
    """Files sent with the message, read by the server from the workspace (`glm_mcp.tools.workspace.files`)."""

    files: Annotated[
        list[str] | None,
        Field(description="Paths or globs of files to send (images: vision models)."),
    ] = None


class Continued(_Arguments):
    """Which earlier conversation a chat continues (`glm_mcp.tools.workspace`)."""

    conversation_id: Annotated[
        str,
        Field(description="Continue this earlier conversation."),
    ] = ""
    from_turn: Annotated[int | None, Field(description="Branch from this turn of it.", ge=1)] = None


class Paging(_Arguments):
    """Which part of a long answer to read."""

    offset: Annotated[int, Field(description="A long answer's next_offset: read on from there.", ge=0)] = 0


class SubmitArguments(Functions, Attached, Generation, Conversation):
    """`submit_async`: a conversation, how to answer it, and what the model may call."""

    json_output: Annotated[bool, Field(description="Answer as a JSON object.")] = False

    def chat_request(self, settings: Settings) -> ChatRequest:
        request = self.to_request(self.conversation(self.system), settings)
        if self.json_output:
            request.response_format = ResponseFormat(type="json_object")
        self.add_tools(request)
        return request


class WebSearchQuery(_Arguments):
    """A question and how to search the web for it."""

    question: Annotated[str, Field(description="What to find out.")]
    search_engine: Annotated[
        SearchEngine | None,
        Field(description="Default search_std."),
    ] = None
    count: Annotated[int | None, Field(description="Results to search (default 10).", ge=1, le=50)] = None
    domain_filter: Annotated[str | None, Field(description="Only this domain's results.", max_length=253)] = None
    recency: Annotated[
        RecencyFilter | None,
        Field(description="Only results from this period."),
    ] = None
    content_size: Annotated[
        ContentSize | None,
        Field(description="Per result: medium 400-600 chars, high ~2500."),
    ] = None
    require_search: Annotated[bool | None, Field(description="Always search.")] = None
    search_query: Annotated[str | None, Field(description="Search exactly this query.")] = None
    search_prompt: Annotated[
        str | None,
        Field(description="How to use the results ({{current_date}}: today)."),
    ] = None


class ChatArguments(Reasoning, Waiting, Continued, SubmitArguments):
    """`chat`: a conversation, how to answer it, and how long to wait."""


class WebSearchArguments(Reasoning, Waiting, Continued, Attached, Generation, WebSearchQuery):
    """`web_search_chat`: a question answered with the platform's web_search tool."""

    def chat_request(self, settings: Settings) -> ChatRequest:
        question = self.question.strip()
        if not question:
            raise ArgumentError("question", "it is empty; give the question to research.")
        request = self.to_request(Conversation(prompt=question).conversation(self.system), settings)
        options = WebSearchOptions(
            enable=True,
            search_result=True,  # the sources are the point of this tool: always ask for them
            search_engine=self.search_engine,
            count=self.count,
            search_domain_filter=self.domain_filter or None,
            search_recency_filter=self.recency,
            content_size=self.content_size,
            require_search=self.require_search,
            search_query=self.search_query or None,
            search_prompt=self.search_prompt or None,
        )
        request.tools = [WebSearchTool(web_search=options)]
        return request


class TaskReference(_Arguments):
    task_id: Annotated[
        str,
        Field(
            description="submit_async's task_id, or a running chat's job_id.",
            min_length=1,
            max_length=200,
            pattern=r"^[\w.:-]+$",
        ),
    ]


class ResultArguments(Reasoning, Paging, JobWaiting, TaskReference):
    """`get_result`: which job to look at, and how long to wait for it to finish."""


class ListJobsArguments(_Arguments):
    """`list_jobs`: which jobs, and which page of them."""

    status: Annotated[
        JobState | None,
        Field(description="Only jobs in this state."),
    ] = None
    limit: Annotated[int, Field(description="Jobs per page, 1 to 100.", ge=1, le=100)] = 20
    cursor: Annotated[
        str,
        Field(description="The last page's next_cursor.", max_length=200),
    ] = ""

    def after(self) -> Position | None:
        """Where the page starts; raises `ArgumentError` for a cursor list_jobs did not give."""
        if not self.cursor:
            return None
        try:
            return Position.parse(self.cursor)
        except ValueError:
            raise ArgumentError("cursor", "it is not a next_cursor that list_jobs returned.") from None


class ListConversationsArguments(_Arguments):
    """`list_conversations`: which page of the caller's conversations."""

    limit: Annotated[int, Field(description="Conversations per page, 1 to 100.", ge=1, le=100)] = 20
    cursor: Annotated[str, Field(description="The last page's next_cursor. Empty: the latest.", max_length=200)] = ""

    def before(self) -> tuple[float, str] | None:
        """Where the page starts; raises `ArgumentError` for a cursor list_conversations did not give."""
        if not self.cursor:
            return None
        updated_at, _, conversation_id = self.cursor.partition(":")
        try:
            return float(updated_at), conversation_id
        except ValueError:
            raise ArgumentError("cursor", "it is not a next_cursor that list_conversations returned.") from None


def new_request_id() -> str:
    """Our own id for each upstream request, so a call can be traced even when no answer came back."""
    return f"glm-mcp-{uuid.uuid4().hex}"
