"""Wire types of the GLM HTTP API v4 (see docs/architecture.md and the contract in glm-api.md).

Request models are strict (we build them, so a typo is our bug); response models tolerate
unknown fields, because the platform adds fields without notice.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = str  # stop, length, tool_calls, sensitive, network_error, model_context_window_exceeded, …
TaskStatus = Literal["PROCESSING", "SUCCESS", "FAIL"]
"""The platform's spelling of an async task's state, on the wire only: `TaskState` is what the rest reads."""
TaskState = Literal["running", "completed", "failed"]
_TASK_STATES: dict[TaskStatus, TaskState] = {"PROCESSING": "running", "SUCCESS": "completed", "FAIL": "failed"}


# Every model here is built on first use (`defer_build`): a process that starts builds none it does not need.


class _Request(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")


class _Response(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="allow")


# --- message content ----------------------------------------------------------------------


class MediaURL(_Request):
    url: Annotated[str, Field(min_length=1, description="An https URL, or base64 data (a data: URL is accepted).")]


class TextPart(_Request):
    type: Literal["text"]
    text: Annotated[str, Field(description="The text of this part.")]


class ImagePart(_Request):
    type: Literal["image_url"]
    image_url: Annotated[MediaURL, Field(description="The image, for vision models (glm-4.6v, glm-4.5v, …).")]


class VideoPart(_Request):
    type: Literal["video_url"]
    video_url: Annotated[MediaURL, Field(description="The video, for vision models that take video.")]


class FilePart(_Request):
    type: Literal["file_url"]
    file_url: Annotated[MediaURL, Field(description="A document, for models that read files.")]


ContentPart = Annotated[TextPart | ImagePart | VideoPart | FilePart, Field(discriminator="type")]


class FunctionCall(_Response):
    name: str = ""
    arguments: str = ""


class ToolCall(_Response):
    """A call the model asks the caller to make; `function.arguments` is JSON text the model wrote."""

    id: str = ""
    type: str = "function"
    index: int | None = None
    function: FunctionCall = Field(default_factory=FunctionCall)


class Message(_Request):
    """One message of a conversation, as the API takes it."""

    role: Annotated[Role, Field(description="Who wrote it: system, user, assistant or tool.")]
    content: Annotated[
        str | list[ContentPart] | None,
        Field(description="Text, or a list of parts (text, image_url, …) for vision models."),
    ] = None
    tool_call_id: Annotated[str | None, Field(description="For role 'tool': the id of the tool call this answers.")] = (
        None
    )
    tool_calls: Annotated[
        list[ToolCall] | None, Field(description="For role 'assistant': the tool calls it made earlier.")
    ] = None


# --- tools the model may use ----------------------------------------------------------------

SearchEngine = Literal[
    "search_std", "search_pro", "search_pro_sogou", "search_pro_quark", "search_pro_jina", "search_pro_bing"
]
RecencyFilter = Literal["oneDay", "oneWeek", "oneMonth", "oneYear", "noLimit"]
ContentSize = Literal["medium", "high"]


class WebSearchOptions(_Request):
    enable: bool = True
    search_engine: SearchEngine | None = None
    search_query: str | None = None
    count: int | None = None
    search_domain_filter: str | None = None
    search_recency_filter: RecencyFilter | None = None
    content_size: ContentSize | None = None
    result_sequence: Literal["before", "after"] | None = None
    search_result: bool | None = None
    require_search: bool | None = None
    search_prompt: str | None = None


class WebSearchTool(_Request):
    type: Literal["web_search"] = "web_search"
    web_search: WebSearchOptions


FUNCTION_NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"
"""The platform's rule for a function's name (it answers 1210 otherwise)."""


class FunctionDefinition(_Request):
    name: Annotated[str, Field(pattern=FUNCTION_NAME_PATTERN)]
    description: str | None = None
    parameters: dict[str, object] | None = None


class FunctionTool(_Request):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class RetrievalOptions(_Request):
    knowledge_id: Annotated[str, Field(min_length=1)]
    prompt_template: str | None = None
    """How the retrieved passages and the question are put to the model ({{knowledge}}, {{question}})."""


class RetrievalTool(_Request):
    """Answer from a knowledge base the key's account owns."""

    type: Literal["retrieval"] = "retrieval"
    retrieval: RetrievalOptions


Tool = Annotated[WebSearchTool | FunctionTool | RetrievalTool, Field(discriminator="type")]


class Thinking(_Request):
    type: Literal["enabled", "disabled"]


class ResponseFormat(_Request):
    type: Literal["text", "json_object"]


class ChatRequest(_Request):
    """The body of POST /chat/completions and POST /async/chat/completions."""

    model: str
    messages: list[Message]
    stream: bool | None = None
    do_sample: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["auto"] | None = None
    tool_stream: bool | None = None
    """Stream function-call arguments in pieces (streamed calls only, on models that do it: `glm.models`)."""
    thinking: Thinking | None = None
    response_format: ResponseFormat | None = None
    request_id: str | None = None
    user_id: str | None = None

    def to_json(self) -> bytes:
        """The wire body: unset fields are left out rather than sent as null."""
        return self.model_dump_json(exclude_none=True).encode()


# --- responses ------------------------------------------------------------------------------


class PromptTokensDetails(_Response):
    cached_tokens: int = 0


class CompletionTokensDetails(_Response):
    reasoning_tokens: int = 0


class Usage(_Response):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None

    @property
    def cached_tokens(self) -> int:
        return self.prompt_tokens_details.cached_tokens if self.prompt_tokens_details else 0

    @property
    def reasoning_tokens(self) -> int:
        return self.completion_tokens_details.reasoning_tokens if self.completion_tokens_details else 0


class WebSearchItem(_Response):
    """One source the web_search tool found; the answer cites it as `[<refer>]`."""

    refer: str | None = None
    title: str | None = None
    link: str | None = None
    media: str | None = None
    icon: str | None = None
    content: str | None = None
    publish_date: str | None = None


class AssistantMessage(_Response):
    role: str = "assistant"
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[ToolCall] | None = None


class Choice(_Response):
    index: int = 0
    finish_reason: FinishReason | None = None
    message: AssistantMessage = Field(default_factory=AssistantMessage)


class ChatCompletion(_Response):
    id: str = ""
    request_id: str | None = None
    created: int | None = None
    model: str = ""
    choices: list[Choice] = Field(default_factory=list)
    usage: Usage | None = None
    web_search: list[WebSearchItem] | None = None

    @property
    def message(self) -> AssistantMessage:
        return self.choices[0].message if self.choices else AssistantMessage()

    @property
    def finish_reason(self) -> FinishReason | None:
        return self.choices[0].finish_reason if self.choices else None


class FunctionCallDelta(_Response):
    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(_Response):
    index: int = 0
    id: str | None = None
    type: str | None = None
    function: FunctionCallDelta | None = None


class Delta(_Response):
    role: str | None = None
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChunkChoice(_Response):
    index: int = 0
    delta: Delta = Field(default_factory=Delta)
    finish_reason: FinishReason | None = None


class ChatCompletionChunk(_Response):
    """One `data:` frame of a streamed chat; the last one carries finish_reason, usage and web_search."""

    id: str = ""
    request_id: str | None = None
    created: int | None = None
    model: str = ""
    choices: list[ChunkChoice] = Field(default_factory=list)
    usage: Usage | None = None
    web_search: list[WebSearchItem] | None = None


class _TaskStatusField(_Response):
    task_status: TaskStatus = "PROCESSING"

    @property
    def state(self) -> TaskState:
        """The task's state in glm-mcp's vocabulary (the one place the platform's spelling is mapped)."""
        return _TASK_STATES[self.task_status]


class AsyncTask(_TaskStatusField):
    """The answer to an async submit, and the PROCESSING / FAIL form of a poll."""

    id: str
    request_id: str | None = None
    model: str = ""


class AsyncTaskResult(ChatCompletion, _TaskStatusField):
    """A poll of /async-result/{id}: the task status, plus the full completion on SUCCESS."""


class ModelInfo(_Response):
    id: str
    object: str = "model"
    created: int | None = None
    owned_by: str | None = None


class ModelList(_Response):
    data: list[ModelInfo] = Field(default_factory=list)


# --- model quirks ---------------------------------------------------------------------------

_THINK = re.compile(r"^\s*<think>(.*?)</think>\s*", re.DOTALL)
_BOX_TOKENS = ("<|begin_of_box|>", "<|end_of_box|>")


def split_answer(content: str | None, reasoning: str | None) -> tuple[str, str | None]:
    """The answer text and the reasoning, with the models' markup quirks undone.

    glm-z1-* models put their reasoning inside the content as `<think>…</think>`; vision models
    wrap answers in `<|begin_of_box|>…<|end_of_box|>`. Callers want neither in the answer.
    """
    text = content or ""
    if match := _THINK.match(text):
        reasoning = ((reasoning or "") + match.group(1)).strip() or None
        text = text[match.end() :]
    for token in _BOX_TOKENS:
        if token in text:
            text = text.replace(token, "")
    return text, reasoning or None


# --- the platform beyond chat (docs/glm-endpoints.md) -----------------------------------------------


class WebSearchRequest(_Request):
    """The body of POST /web_search: search results without a model's answer."""

    search_query: str
    search_engine: SearchEngine
    count: int | None = None
    search_domain_filter: str | None = None
    search_recency_filter: RecencyFilter | None = None
    content_size: ContentSize | None = None
    request_id: str | None = None


class TokenizerRequest(_Request):
    """The body of POST /tokenizer: a prompt counted as the model would read it, nothing generated."""

    model: str
    messages: list[Message]
    tools: list[FunctionTool] | None = None
    request_id: str | None = None


class TokenizerUsage(_Response):
    prompt_tokens: int = 0
    image_tokens: int | None = None
    video_tokens: int | None = None
    total_tokens: int | None = None


class TokenizerResponse(_Response):
    """The platform's count of a prompt: `{id, usage: {prompt_tokens, image_tokens, video_tokens, total_tokens},
    created, request_id}` (the mainland reference shows `usage.prompt_tokens` alone)."""

    id: str = ""
    usage: TokenizerUsage = Field(default_factory=TokenizerUsage)
    request_id: str | None = None

    @property
    def tokens(self) -> int:
        """The prompt's tokens in all: `total_tokens` when the answer has it, else what it counted."""
        usage = self.usage
        parts = usage.prompt_tokens + (usage.image_tokens or 0) + (usage.video_tokens or 0)
        return usage.total_tokens if usage.total_tokens is not None else parts


class SearchIntent(_Response):
    query: str = ""
    intent: str = ""
    keywords: str = ""


class WebSearchResponse(_Response):
    id: str = ""
    created: int | None = None
    request_id: str | None = None
    search_intent: list[SearchIntent] = Field(default_factory=list)
    search_result: list[WebSearchItem] = Field(default_factory=list)


ReaderFormat = Literal["markdown", "text"]


class ReaderRequest(_Request):
    """The body of POST /reader: a page as clean markdown or text."""

    url: str
    return_format: ReaderFormat | None = None
    no_cache: bool | None = None
    retain_images: bool | None = None
    with_links_summary: bool | None = None
    with_images_summary: bool | None = None
    timeout: str | None = None
    request_id: str | None = None


class ReaderPage(_Response):
    title: str = ""
    description: str = ""
    url: str = ""
    content: str = ""
    publishedTime: str | None = None
    metadata: dict[str, object] = Field(default_factory=dict)
    images: dict[str, str] = Field(default_factory=dict)
    links: dict[str, str] = Field(default_factory=dict)


class ReaderResponse(_Response):
    id: str = ""
    request_id: str | None = None
    reader_result: ReaderPage = Field(default_factory=ReaderPage)


ImageQuality = Literal["hd", "standard"]


class ImageRequest(_Request):
    """The body of POST /images/generations and POST /async/images/generations."""

    model: str
    prompt: str
    size: str | None = None
    quality: ImageQuality | None = None
    request_id: str | None = None


class GeneratedImage(_Response):
    url: str = ""
    b64_json: str | None = None
    revised_prompt: str | None = None


class ContentFilter(_Response):
    role: str = ""
    level: int | None = None


class ImagesResponse(_Response):
    created: int | None = None
    request_id: str | None = None
    data: list[GeneratedImage] = Field(default_factory=list)
    content_filter: list[ContentFilter] | None = None


class AsyncImageResult(_TaskStatusField):
    """A poll of an async image task: `image_result` on SUCCESS."""

    id: str = ""
    model: str = ""
    request_id: str | None = None
    image_result: list[GeneratedImage] = Field(default_factory=list)


VideoQuality = Literal["quality", "speed"]


class VideoRequest(_Request):
    """The body of POST /videos/generations (CogVideoX, Vidu)."""

    model: str
    prompt: str | None = None
    image_url: str | None = None
    quality: VideoQuality | None = None
    with_audio: bool | None = None
    size: str | None = None
    duration: int | None = None
    fps: int | None = None
    request_id: str | None = None


class VideoFile(_Response):
    url: str = ""
    cover_image_url: str = ""


class VideoTaskResult(_TaskStatusField):
    """A poll of a video task: `video_result` on SUCCESS."""

    id: str = ""
    model: str = ""
    request_id: str | None = None
    video_result: list[VideoFile] = Field(default_factory=list)


class QuotaLimit(_Response):
    """One window of a GLM Coding Plan's quota: TOKENS_LIMIT (5-hour, weekly) or TIME_LIMIT (monthly tool calls)."""

    type: str = ""
    unit: int | None = None
    number: int | None = None
    percentage: float | None = None
    usage: int | None = None
    currentValue: int | None = None
    remaining: int | None = None
    nextResetTime: int | None = None


class QuotaData(_Response):
    limits: list[QuotaLimit] = Field(default_factory=list)
    level: str | None = None


class MonitorResponse(_Response):
    """The monitor API's envelope: `{code, msg, data, success}`."""

    code: int | str | None = None
    msg: str = ""
    success: bool = False
    data: QuotaData | None = None


# --- files and batches (docs/glm-endpoints.md#files-and-batches) -------------------------------------

BATCH_ENDPOINT = "/v4/chat/completions"
"""The endpoint a chat batch names, and the `url` of each of its lines."""
BatchStatus = Literal[
    "validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"
]
"""The platform's statuses of a batch, on the wire only: `BatchState` is what the rest reads."""
BatchState = Literal["running", "completed", "failed", "cancelled"]
_BATCH_STATES: dict[str, BatchState] = {
    "completed": "completed",
    "failed": "failed",
    "expired": "failed",  # not done within its window: the lines done by then are in its files
    "cancelled": "cancelled",
}


class FileObject(_Response):
    """A file of the Files API (an upload, or a batch's output)."""

    id: str
    bytes: int | None = None
    created_at: int | None = None
    filename: str | None = None
    purpose: str | None = None


class FileDeleted(_Response):
    id: str = ""
    deleted: bool = False


class BatchRequest(_Request):
    """The body of POST /batches."""

    input_file_id: str
    endpoint: str = BATCH_ENDPOINT
    completion_window: str | None = None
    """Deprecated on the platform (it schedules by load, and cancels a batch not done in 7 days)."""
    metadata: dict[str, str] | None = None
    """At most 16 pairs, keys up to 64 characters, values up to 512."""
    auto_delete_input_file: bool | None = None
    """The platform's default is true: the input file goes once the batch has ended."""


class BatchRequestCounts(_Response):
    total: int | None = None
    completed: int | None = None
    failed: int | None = None


class BatchProblem(_Response):
    """What validation found wrong with a batch's input file (`errors.data`)."""

    code: str | None = None
    line: int | None = None
    message: str | None = None
    param: str | None = None


class BatchProblems(_Response):
    data: list[BatchProblem] = Field(default_factory=list)


class Batch(_Response):
    """A batch as the platform reports it (create, retrieve, cancel)."""

    id: str
    status: str = "validating"
    """A `BatchStatus`; read as a string, so that a status the platform adds is still a running batch."""
    input_file_id: str = ""
    output_file_id: str | None = None
    error_file_id: str | None = None
    request_counts: BatchRequestCounts | None = None
    errors: BatchProblems | None = None
    created_at: int | None = None
    expires_at: int | None = None
    metadata: dict[str, str] | None = None

    @property
    def state(self) -> BatchState:
        """The batch's state in glm-mcp's vocabulary (the one place the platform's statuses are mapped)."""
        return _BATCH_STATES.get(self.status, "running")

    @property
    def output_file(self) -> str | None:
        """The output file's id, once there is one (the platform sends "" until then)."""
        return self.output_file_id or None

    @property
    def error_file(self) -> str | None:
        return self.error_file_id or None


class BatchLineResponse(_Response):
    status_code: int = 0
    body: dict[str, object] | None = None


class BatchLine(_Response):
    """One line of a batch's output or error file: the answer to the line `custom_id` named."""

    custom_id: str = ""
    response: BatchLineResponse | None = None
    error: dict[str, object] | None = None

    def completion(self) -> ChatCompletion | None:
        """The chat completion the line holds, when it was answered (HTTP 200)."""
        response = self.response
        if response is None or response.status_code != 200 or response.body is None or "error" in response.body:
            return None
        return ChatCompletion.model_validate(response.body)

    def failure(self) -> tuple[str | None, str]:
        """(code, message) of a line that was not answered."""
        found: object = self.error
        if found is None and self.response is not None and self.response.body is not None:
            found = self.response.body.get("error")
        if isinstance(found, dict):
            code, message = found.get("code"), found.get("message")
            return (str(code) if code is not None else None), str(message or "")
        status = self.response.status_code if self.response is not None else 0
        return None, f"the line was answered with HTTP {status} and no error" if status else "the line has no answer"
