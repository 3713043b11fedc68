"""The platform's tools beyond chat: search, page reading, images, video, models and usage.

Each handler turns its arguments into one typed GLM request (`glm.client`), and the answer into its result
model (`platform_results`); `tools.TOOLS` lists them with their toolset. Every call's cost is recorded
(`accounting.record`).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

import anyio
from mcp.server.mcpserver import Context
from mcp.types import ImageContent

from glm_mcp.errors import MediaTaskFailed, SubmitUncertainError
from glm_mcp.glm import Attempts, GLMError, GLMTransportError
from glm_mcp.glm import models as model_table
from glm_mcp.glm.errors import GLMProtocolError
from glm_mcp.glm.types import AsyncTask, AsyncTaskResult
from glm_mcp.jobs import JobRecord, poll_task
from glm_mcp.server.platform_args import (
    ImageArguments,
    ModelsArguments,
    ReadArguments,
    SearchArguments,
    UsageArguments,
    VideoArguments,
)
from glm_mcp.server.platform_results import (
    ImageResult,
    ModelEntry,
    ModelList,
    PageResult,
    SearchResults,
    UsageReport,
    VideoJob,
)
from glm_mcp.server.progress import ProgressReporter
from glm_mcp.server.results import TaskResult
from glm_mcp.server.state import AppState
from glm_mcp.server.task_wait import task_wait
from glm_mcp.tools import accounting
from glm_mcp.tools.media_files import expires_at, media_of

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

HEARTBEAT_S = 5.0
"""How often a long image generation says it is still going."""
ASYNC_IMAGE_MODELS = ("glm-image",)
"""Image models the platform makes as tasks (`/async/images/generations`), so that a long one can be handed off."""
SHOWN_TYPES = {"image/png", "image/jpeg", "image/webp", "image/gif"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


async def web_search(app: AppState, ctx: Context, args: SearchArguments) -> SearchResults:
    response = await app.glm.web_search(args.request())
    await accounting.record(app, "web_search", args.engine)
    return SearchResults.from_response(args.query.strip(), response)


async def read_url(app: AppState, ctx: Context, args: ReadArguments) -> PageResult:
    page = (await app.glm.read_url(args.request())).reader_result
    await accounting.record(app, "read_url", "web-reader")
    limit = app.settings.max_result_chars
    whole = page.content
    part = whole[args.offset : args.offset + limit]
    end = args.offset + len(part)
    cut = end < len(whole)
    return PageResult(
        url=page.url or args.url,
        title=page.title,
        description=page.description,
        published=page.publishedTime,
        content=part,
        total_chars=len(whole) if cut or args.offset else None,
        next_offset=end if cut else None,
        next=f'Call read_url with url="{args.url}" and offset={end} for the rest.' if cut else None,
        metadata={str(k): str(v) for k, v in page.metadata.items()},
        links=page.links,
        images=page.images,
        request_id=(page.model_extra or {}).get("request_id") or None,
    )


# --- images ---------------------------------------------------------------------------------------------


async def generate_image(app: AppState, ctx: Context, args: ImageArguments) -> ImageResult:
    """The image, shown as image content, with its URL, its expiry and (over stdio) a saved copy.

    CogView answers in one request, with a heartbeat while it draws; glm-image is a platform task, polled
    until the call's wait runs out and then handed back as a job that get_result finishes.
    """
    request = args.request(app.settings)
    wait = task_wait(args.wait(app.settings.wait_seconds))
    reporter = ProgressReporter(ctx, total=wait)
    if request.model.startswith(ASYNC_IMAGE_MODELS):
        task = await _submitted(app.glm.submit_image(request, attempts=Attempts()), request.request_id)
        not_recorded = await app.jobs.record_task(_record(app, task, "image_task", request.prompt, request.model))
        state = await _poll(app, task.id, wait, reporter, "image")
        if state.state == "running":
            return ImageResult(
                status="running",
                task_id=task.id,
                next=VideoJob.running_next(task.id, app.settings.wait_seconds).replace("the video", "the image"),
                model=request.model,
                request_id=request.request_id,
                not_recorded=not_recorded,
            )
        await _finish_record(app, task.id, TaskResult.from_poll(task.id, state))
        images, _ = media_of(state)
        if not images:
            if state.state == "failed":
                raise MediaTaskFailed(task.id, "image")
            raise _no_image(state)
        url, created = images[0].url, None
    else:
        response = await _with_heartbeat(
            reporter, "drawing", _submitted(app.glm.generate_image(request), request.request_id)
        )
        if not response.data or not response.data[0].url:
            raise GLMProtocolError("the GLM API answered the image request without an image URL")
        url, created = response.data[0].url, response.created
    await accounting.record(app, "generate_image", request.model)
    return await _shown(app, ctx, url, created, request.model, request.request_id)


async def _shown(
    app: AppState, ctx: Context, url: str, created: int | None, model: str, request_id: str | None
) -> ImageResult:
    """The image as content a client can show, and saved over stdio; what cannot be done is said, not raised."""
    result = ImageResult(url=url, expires_at=expires_at(url, created), model=model, request_id=request_id)
    try:
        data, media_type = await app.glm.download(url)
    except GLMError as exc:
        return result.model_copy(update={"note": f"The image could not be fetched to show it: {exc}"})
    if media_type not in SHOWN_TYPES:
        media_type = "image/png" if data.startswith(PNG_MAGIC) else media_type
    notes: list[str] = []
    content = [ImageContent(type="image", data=base64.b64encode(data).decode("ascii"), mime_type=media_type)]
    saved: str | None = None
    if ctx.request_context.request is None or getattr(ctx.request_context.request, "headers", None) is None:
        try:
            saved = str(await anyio.to_thread.run_sync(_save, app.settings.images_dir, data, media_type))
        except OSError as exc:
            notes.append(f"No copy was saved in {app.settings.images_dir} (GLM_IMAGE_DIR): {exc.strerror or exc}.")
    return result.model_copy(
        update={
            "media_type": media_type,
            "bytes": len(data),
            "saved_path": saved,
            "content": content,
            "note": " ".join(notes) or None,
        }
    )


def _save(directory: Path, data: bytes, media_type: str) -> Path:
    """A copy named by the time and its content, never overwriting another image."""
    directory.mkdir(parents=True, exist_ok=True)
    suffix = {"image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif"}.get(media_type, ".png")
    name = time.strftime("%Y%m%d-%H%M%S") + "-" + hashlib.sha256(data).hexdigest()[:12] + suffix
    path = directory / name
    path.write_bytes(data)
    return path


def _no_image(state: AsyncTaskResult) -> GLMProtocolError:
    return GLMProtocolError(f"the GLM API reports image task {state.id} {state.state} without an image")


async def _with_heartbeat(reporter: ProgressReporter, what: str, call: Awaitable[_T]) -> _T:
    """`call`'s answer, with a progress notification every HEARTBEAT_S meanwhile; its error raised as it is."""
    answer: list[_T] = []
    error: list[Exception] = []

    async def beat() -> None:
        while True:
            await anyio.sleep(HEARTBEAT_S)
            await reporter.send(f"{what} ({reporter.elapsed:.0f} s)")

    async with anyio.create_task_group() as group:
        group.start_soon(beat)
        try:
            answer.append(await call)
        except Exception as exc:  # raised outside the group, not wrapped in an ExceptionGroup
            error.append(exc)
        finally:
            group.cancel_scope.cancel()
    if error:
        raise error[0]
    return answer[0]


# --- video ------------------------------------------------------------------------------------------------


async def generate_video(app: AppState, ctx: Context, args: VideoArguments) -> VideoJob:
    """A video task: submitted, followed until the call's wait runs out, then a job that get_result finishes."""
    request = args.request(app.settings)
    attempts = Attempts()
    task = await _submitted(app.glm.submit_video(request, attempts=attempts), request.request_id)
    await accounting.record(app, "generate_video", request.model)
    summary = request.prompt or "(from an image)"
    not_recorded = await app.jobs.record_task(_record(app, task, "video_task", summary, request.model))
    wait = task_wait(args.wait(app.settings.wait_seconds))
    state = await _poll(app, task.id, wait, ProgressReporter(ctx, total=wait), "video")
    job = VideoJob(
        status=state.state,
        task_id=task.id,
        model=task.model or request.model,
        request_id=task.request_id or request.request_id,
        attempts=attempts.count,
        not_recorded=not_recorded,
        registry_notice=app.store.take_notice(),
    )
    if state.state == "running":
        return job.model_copy(update={"next": VideoJob.running_next(task.id, app.settings.wait_seconds)})
    result = TaskResult.from_poll(task.id, state)
    await _finish_record(app, task.id, result)
    _, videos = media_of(state)
    error = result.error
    if state.state == "failed" and error is None:
        error = await app.describe_failure(MediaTaskFailed(task.id, "video"))
    return job.model_copy(update={"videos": videos, "error": error})


# --- models and usage ---------------------------------------------------------------------------------------


async def list_models(app: AppState, ctx: Context, args: ModelsArguments) -> ModelList:
    return await model_list(app, args.kind)


async def model_list(app: AppState, kind: str | None = None) -> ModelList:
    """The key's models (GET /models), each with what glm-mcp's one table (`glm.models.MODELS`) says of it."""
    entries: list[ModelEntry] = []
    for info in sorted(await app.glm.list_models(), key=lambda m: m.id):
        traits = model_table.traits(info.id)
        if traits is None:
            entries.append(ModelEntry(id=info.id, known=False))
            continue
        entries.append(
            ModelEntry(
                id=info.id,
                kind=traits.kind,
                vision=traits.vision,
                reasoning=traits.reasoning,
                context_tokens=traits.context_tokens,
                max_output_tokens=traits.max_output_tokens,
            )
        )
    if kind is not None:
        entries = [entry for entry in entries if (entry.kind or "") == kind or not entry.known]
    unknown = sum(not entry.known for entry in entries)
    note = f"{unknown} model(s) not in glm-mcp's table: their capabilities are not known here." if unknown else None
    return ModelList(models=entries, note=note)


async def usage(app: AppState, ctx: Context, args: UsageArguments) -> UsageReport:
    return await accounting.report(app, args.days, args.by)


# --- shared ---------------------------------------------------------------------------------------------------


async def _submitted(call: Awaitable[_T], request_id: str | None) -> _T:
    """The answer of a paid request; one that may have reached the platform without an answer is not re-sent."""
    try:
        return await call
    except GLMTransportError as exc:
        if exc.maybe_delivered:
            raise SubmitUncertainError(request_id or "", exc, exc.attempts) from exc
        raise


def _record(app: AppState, task: AsyncTask, kind: str, summary: str, model: str) -> JobRecord:
    text = " ".join(summary.split())
    return JobRecord(
        id=task.id,
        kind=kind,  # type: ignore[arg-type]
        model=task.model or model,
        summary=text if len(text) <= 200 else text[:199] + "…",
        created_at=time.time(),
        request_id=task.request_id,
        principal=app.principal,
    )


async def _poll(app: AppState, task_id: str, wait: float, reporter: ProgressReporter, what: str) -> AsyncTaskResult:
    async def report(polls: int, state: AsyncTaskResult) -> None:
        await reporter.send(f"{what} task {state.task_status.lower()} after {polls} poll(s) ({reporter.elapsed:.0f} s)")

    return await poll_task(app.glm, task_id, wait, report)


async def _finish_record(app: AppState, task_id: str, result: TaskResult) -> None:
    """Keep a finished task's result, so get_result answers from the registry without asking the platform."""
    try:
        await app.store.finish(task_id, result.status, result=result.model_dump_json(), partial_text=None)
    except Exception as exc:  # RegistryUnavailable: the next get_result asks the platform again
        logger.warning("the end of task %s is not recorded: %s", task_id, exc)
