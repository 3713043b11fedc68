"""chat, web_search_chat and submit_async: a conversation sent to a GLM model, answered here or as a platform job.

`chat` and `web_search_chat` stream the answer in a `ChatStream` and follow it with progress until it ends
or the call's wait runs out; past the wait the stream is handed off as a job (recorded, then followed
with get_result, or as an MCP task: `ANSWER_TASK`) and the call returns what has arrived. `submit_async`
hands the conversation to the platform as a job of its own. All three take the same conversation,
generation options and files (`arguments.py`, `functions.py`), prepared in the workspace
(`workspace.prepare`) before anything is sent. `submit_async` alone takes no wait (it returns at once), no
`include_reasoning` (get_result reads the answer) and continues no conversation: its answer is seen only when
get_result polls the platform, while `chat` continues a conversation and hands a long answer off as a job of this
server's, whose turn it keeps.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar

from mcp.server.mcpserver import Context
from pydantic import Field

from glm_mcp.config import Settings
from glm_mcp.errors import ArgumentError, GenerationFailed, JobCancelledError, SubmitUncertainError
from glm_mcp.glm import Attempts, GLMTransportError
from glm_mcp.glm.types import (
    AsyncTask,
    ChatRequest,
    ContentSize,
    RecencyFilter,
    ResponseFormat,
    SearchEngine,
    WebSearchOptions,
    WebSearchTool,
)
from glm_mcp.jobs import ChatKind, ChatStream, Job, JobRecord, JobState
from glm_mcp.server.failures import ToolFailure
from glm_mcp.server.progress import ProgressReporter, follow
from glm_mcp.server.registration import ASKS, STARTS, TaskForm, TaskState, ToolSpec, tool_result
from glm_mcp.server.result import paragraphs
from glm_mcp.server.state import AppState
from glm_mcp.server.task_offer import task_wait
from glm_mcp.tools.accounting import record_stream
from glm_mcp.tools.answer import (
    RESULT_TYPES,
    Answer,
    ChatResult,
    RegistryNote,
    RegistryNotes,
    SentFile,
    SentFiles,
    WebSearchResult,
    next_call,
    page_of,
    registry_note,
)
from glm_mcp.tools.arguments import (
    Arguments,
    Attached,
    Continued,
    Conversation,
    Generation,
    Reasoning,
    Waiting,
)
from glm_mcp.tools.estimates import Estimated, TokenEstimate, preflight
from glm_mcp.tools.functions import Functions
from glm_mcp.tools.job_result import ChatOutcome, job_outcome, task_ended
from glm_mcp.tools.workspace import Continuation, prepare, record_turn

__all__ = [
    "ANSWER_TASK",
    "CHAT",
    "SUBMIT_ASYNC",
    "WEB_SEARCH_CHAT",
    "ChatArguments",
    "SubmitArguments",
    "SubmittedTask",
    "WebSearchArguments",
    "WebSearchQuery",
    "chat",
    "submit_async",
    "web_search_chat",
]


# --- arguments ----------------------------------------------------------------------------------------------


class SubmitArguments(Functions, Attached, Generation, Conversation):
    """`submit_async`: a conversation, how to answer it, and what the model may call."""

    json_output: Annotated[bool, Field(description="Answer as a JSON object.")] = False
    estimate_tokens: Annotated[bool | None, Field(description="Count prompt tokens first.")] = None

    def chat_request(self, settings: Settings) -> ChatRequest:
        request = self.to_request(self.conversation(self.system), settings)
        if self.json_output:
            request.response_format = ResponseFormat(type="json_object")
        self.add_tools(request)
        return request


class WebSearchQuery(Arguments):
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


# --- results ------------------------------------------------------------------------------------------------


class SubmittedTask(RegistryNotes, SentFiles, Estimated):
    """An async chat job the platform accepted."""

    FIRST: ClassVar[tuple[str, ...]] = ("status", "next", "task_id")

    status: JobState = Field(description="running: the platform generates it; `next` says how to get the answer.")
    next: str = Field(description="The exact call that gets the answer.")
    task_id: str = Field(description="Pass this to get_result.")
    model: str = ""
    request_id: str | None = None
    attempts: int = Field(1, description="Requests sent to the platform to submit it, when more than one.")

    @classmethod
    def of_task(
        cls,
        task: AsyncTask,
        attempts: int,
        *,
        wait_seconds: float,
        model: str,
        files: Sequence[SentFile],
        registry: RegistryNote,
        estimate: TokenEstimate | None = None,
    ) -> SubmittedTask:
        """The platform's job for a submit, with the files it carries and what the registry made of it."""
        return cls(
            task_id=task.id,
            status=task.state,
            next=next_call(task.id, wait_seconds, "for the answer"),
            model=task.model or model,
            request_id=task.request_id,
            attempts=attempts,
            files=list(files) or None,
            not_recorded=registry.not_recorded,
            registry_notice=registry.notice,
            prompt_estimate=estimate,
        )

    def to_text(self) -> str:
        summary = f"Task {self.task_id} submitted ({self.status}, model {self.model}). {self.next}"
        return paragraphs(summary, self.files_text(), self.estimate_text(), self.registry_text())


# --- handlers -----------------------------------------------------------------------------------------------


async def chat(app: AppState, ctx: Context, args: ChatArguments) -> ChatResult:
    await args.check_schemas()
    return await _answered(app, ctx, "chat", args)


async def web_search_chat(app: AppState, ctx: Context, args: WebSearchArguments) -> ChatResult:
    return await _answered(app, ctx, "web_search_chat", args)


async def _answered(
    app: AppState, ctx: Context, kind: ChatKind, args: ChatArguments | WebSearchArguments
) -> ChatResult:
    """Stream the answer with progress; past the call's wait, hand back a job that carries on.

    The stream is a job only once handed off: a call answered within its wait keeps nothing and writes no job.
    """
    continued = Continuation(args.conversation_id, args.from_turn)
    prepared = await prepare(app, ctx, args.chat_request(app.settings), files=args.files, continued=continued)
    count = isinstance(args, ChatArguments) and bool(args.estimate_tokens)
    estimate = await preflight(app, ctx, prepared.request, what=kind, count=count)
    wait_seconds = task_wait(args.wait(app.settings.results.wait_seconds))
    result_type = RESULT_TYPES[kind]
    stream = app.jobs.start(kind, prepared.request, app.glm, principal=app.principal)
    try:
        if not await follow(stream, ProgressReporter(ctx, total=wait_seconds), wait_seconds):
            conversation = await record_turn(app, prepared)  # awaiting the answer the job will keep
            job = await app.jobs.hand_off(stream, ChatOutcome(app, prepared.files, conversation))
            return result_type.compose(
                Answer.so_far(job, wait_seconds=app.settings.results.wait_seconds),
                files=prepared.files,
                conversation=conversation,
                registry=registry_note(app, job.not_recorded),
                full_reasoning=args.include_reasoning,
                estimate=estimate,
            )
    except BaseException:  # the caller cancelled before its id was returned: stop generating, close the stream
        stream.cancel()
        raise
    await record_stream(app, stream)
    answer = _answer(stream)
    conversation = await record_turn(app, prepared, answer.text)
    return result_type.compose(
        answer,
        files=prepared.files,
        conversation=conversation,
        page=page_of(answer.text, 0, app.settings.results.max_chars, conversation.ref),
        full_reasoning=args.include_reasoning,
        estimate=estimate,
    )


def _answer(stream: ChatStream) -> Answer:
    """A finished stream's whole answer; `GenerationFailed`, with what it had written, when it has none."""
    if stream.completion is not None:
        return Answer.of_completion(stream.completion, stream.attempts.count, model=stream.model)
    cause = stream.error or JobCancelledError("the generation was stopped before it ended")
    raise GenerationFailed(cause, partial_text=stream.accumulator.text)


async def submit_async(app: AppState, ctx: Context, args: SubmitArguments) -> SubmittedTask:
    """Start a platform job; a submit that may have arrived is never re-sent, and one the registry cannot record still
    returns its id, saying so."""
    await args.check_schemas()
    prepared = await prepare(app, ctx, args.chat_request(app.settings), files=args.files)
    request = prepared.request
    estimate = await preflight(app, ctx, request, what="submit_async", count=bool(args.estimate_tokens))
    attempts = Attempts()
    try:
        task = await app.glm.submit_async(request, attempts=attempts)
    except GLMTransportError as exc:
        if exc.maybe_delivered:
            raise SubmitUncertainError(request.request_id or "", exc, exc.attempts) from exc
        raise
    record = JobRecord.of_request(
        task.id, "async_task", request, model=task.model, created_at=time.time(), principal=app.principal
    )
    not_recorded = await app.jobs.record_task(record)
    return SubmittedTask.of_task(
        task,
        attempts.count,
        wait_seconds=app.settings.results.wait_seconds,
        model=request.model,
        files=prepared.files,
        registry=registry_note(app, not_recorded),
        estimate=estimate,
    )


# --- as an MCP task -----------------------------------------------------------------------------------------


def _always(arguments: Mapping[str, Any]) -> bool:
    return True


async def _answer_task(app: AppState, job: Job | JobRecord) -> TaskState:
    """A chat's task once its job has ended: the answer as chat returns it, or the error result it failed with."""
    outcome = await job_outcome(app, job)
    ended = task_ended(outcome)
    if ended is not None:
        return ended
    if outcome.result is not None:
        answer = outcome.result.read(None, full_reasoning=False)
        return TaskState("completed", "answer complete", tool_result(answer, is_error=False))
    failure = outcome.error or ToolFailure(error="internal_error", message="The generation failed; no reason was kept.")
    failure.partial_text = failure.partial_text or outcome.partial_text
    return TaskState("completed", f"ended with an error result ({failure.error})", tool_result(failure, is_error=True))


ANSWER_TASK = TaskForm(suffix="", offered=_always, final=_answer_task)
"""A chat still generating when the task threshold passes becomes a task that ends with its answer."""


# --- the tools ----------------------------------------------------------------------------------------------


CHAT = ToolSpec(
    "chat",
    "Ask a GLM model",
    "Ask a GLM model (Zhipu / Z.ai) and get its answer: a second opinion, a draft, a translation (GLM is strong "
    "in Chinese), or a question about an image with a vision model. Give `prompt` for one message or `messages` "
    "for a whole conversation; `tools` lets it call your functions. Returns the answer, its reasoning when "
    "thinking is on, and token usage.",
    chat,
    ChatArguments,
    ChatResult,
    ASKS,
    task=ANSWER_TASK,
)

WEB_SEARCH_CHAT = ToolSpec(
    "web_search_chat",
    "Answer with GLM web search",
    "Answer a question from a live web search on the GLM platform: the model searches, reads the results and "
    "answers citing them as [ref_N]. Returns the answer and its sources (title, URL, site, date, snippet), and "
    "says so plainly when the search found nothing.",
    web_search_chat,
    WebSearchArguments,
    WebSearchResult,
    ASKS,
    task=ANSWER_TASK,
)

SUBMIT_ASYNC = ToolSpec(
    "submit_async",
    "Start a GLM chat job",
    "Start a chat as a background job on the GLM platform and return at once with its task_id; fetch the answer "
    "later with get_result. For long generations. Takes chat's inputs except conversation_id, from_turn, "
    "wait_seconds and include_reasoning: it starts a new conversation (chat continues one and hands long answers "
    "off too); get_result reads the reasoning.",
    submit_async,
    SubmitArguments,
    SubmittedTask,
    STARTS,
)
