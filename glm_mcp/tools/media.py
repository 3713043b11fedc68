"""generate_image and generate_video: images and videos the platform makes.

Each handler turns its arguments into one typed GLM request (`glm.client`) and the answer into its
result. CogView answers an image in one request; glm-image and every video are platform tasks, followed
until the call's wait runs out and then handed back as jobs that get_result finishes. The files the
platform makes are temporary URLs (`media_files.py`), each offered to the caller as a `glm-media://` resource
(`server/media.py`); the image itself is inline only where GLM_MEDIA_INLINE says. Every call's cost is recorded
(`accounting.record`).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import anyio
from mcp.server.mcpserver import Context
from mcp.types import ContentBlock, ImageContent
from pydantic import Field

from glm_mcp.config import Settings
from glm_mcp.errors import ArgumentError, MediaTaskFailed, SubmitUncertainError
from glm_mcp.glm import Attempts, GLMError, GLMTransportError
from glm_mcp.glm.errors import GLMFileRefusedError, GLMProtocolError
from glm_mcp.glm.types import AsyncTask, AsyncTaskResult, ImageQuality, ImageRequest, VideoQuality, VideoRequest
from glm_mcp.jobs import JobRecord, JobState, poll_task
from glm_mcp.server.confirmation import confirm_spend
from glm_mcp.server.failures import ToolFailure
from glm_mcp.server.media import MediaFile, inline_wanted, link_blocks, offer
from glm_mcp.server.progress import ProgressReporter
from glm_mcp.server.registration import STARTS, ToolSpec
from glm_mcp.server.result import paragraphs
from glm_mcp.server.state import AppState
from glm_mcp.server.task_offer import task_wait
from glm_mcp.tools import accounting
from glm_mcp.tools.answer import RegistryNotes, next_call, registry_note
from glm_mcp.tools.arguments import Arguments, new_request_id
from glm_mcp.tools.estimates import per_call
from glm_mcp.tools.job_result import TaskResult
from glm_mcp.tools.media_files import VideoFile, expires_at, expiry, file_links, media_of, named

__all__ = [
    "GENERATE_IMAGE",
    "GENERATE_VIDEO",
    "ImageArguments",
    "ImageResult",
    "VideoArguments",
    "VideoJob",
    "generate_image",
    "generate_video",
]

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

HEARTBEAT_S = 5.0
"""How often a long image generation says it is still going."""
ASYNC_IMAGE_MODELS = ("glm-image",)
"""Image models the platform makes as tasks (`/async/images/generations`), so that a long one can be handed off."""


SIZE_PATTERN = r"^\d{3,4}x\d{3,4}$"


# --- arguments ----------------------------------------------------------------------------------------------


class _Wait(Arguments):
    wait_seconds: Annotated[
        float | None,
        Field(description="Seconds to wait; then status running and `next`. Default 45.", ge=0, le=3600),
    ] = None

    def wait(self, default: float) -> float:
        return default if self.wait_seconds is None else self.wait_seconds


class ImageArguments(_Wait):
    """`generate_image`: CogView-4 or glm-image."""

    prompt: Annotated[str, Field(description="What to draw.", min_length=1, max_length=4000)]
    model: Annotated[str, Field(description="cogview-4, cogview-3-flash or glm-image. Default GLM_IMAGE_MODEL.")] = ""
    size: Annotated[
        str, Field(description="WIDTHxHEIGHT, e.g. 1024x1024, 768x1344, 1344x768.", pattern=SIZE_PATTERN)
    ] = ""
    quality: Annotated[ImageQuality | None, Field(description="hd: finer, slower.")] = None

    def request(self, settings: Settings) -> ImageRequest:
        if not self.prompt.strip():
            raise ArgumentError("prompt", "it is empty; say what to draw.")
        return ImageRequest(
            model=self.model.strip() or settings.models.image,
            prompt=self.prompt,
            size=self.size or None,
            quality=self.quality,
            request_id=new_request_id(),
        )


class VideoArguments(_Wait):
    """`generate_video`: CogVideoX or Vidu, always a platform task."""

    prompt: Annotated[str, Field(description="What happens in the video.", max_length=4000)] = ""
    image_url: Annotated[str, Field(description="A first frame to animate: URL or base64.")] = ""
    model: Annotated[
        str, Field(description="e.g. cogvideox-3, cogvideox-flash, viduq1-text. Default GLM_VIDEO_MODEL.")
    ] = ""
    quality: Annotated[VideoQuality | None, Field(description="quality or speed.")] = None
    size: Annotated[str, Field(description="WIDTHxHEIGHT, e.g. 1920x1080.", pattern=SIZE_PATTERN)] = ""
    duration: Annotated[Literal[5, 10] | None, Field(description="Seconds.")] = None
    fps: Annotated[Literal[30, 60] | None, Field(description="Frames per second.")] = None
    with_audio: Annotated[bool | None, Field(description="Add sound (CogVideoX-3).")] = None

    def request(self, settings: Settings) -> VideoRequest:
        if not self.prompt.strip() and not self.image_url:
            raise ArgumentError("prompt", "give a `prompt`, an `image_url`, or both.")
        return VideoRequest(
            model=self.model.strip() or settings.models.video,
            prompt=self.prompt or None,
            image_url=self.image_url or None,
            quality=self.quality,
            size=self.size or None,
            duration=self.duration,
            fps=self.fps,
            with_audio=self.with_audio,
            request_id=new_request_id(),
        )


# --- results ------------------------------------------------------------------------------------------------


class ImageResult(RegistryNotes):
    """A generated image: its resource (linked beside this), its URL and when that expires, and where
    GLM_MEDIA_INLINE says, the image itself as image content."""

    FIRST: ClassVar[tuple[str, ...]] = ("status", "next", "task_id", "resource", "url", "expires_at", "saved_path")

    status: JobState = Field("completed", description="running: still being made; `next` says how to get it.")
    next: str | None = Field(None, description="With status running: the exact call that gets the image.")
    task_id: str | None = Field(None, description="With status running: pass it to get_result.")
    resource: str = Field(
        "", description="Its glm-media:// resource: resources/read gives the image while the platform keeps it."
    )
    url: str = Field("", description="Where the platform serves the image, until expires_at.")
    expires_at: str = Field("", description="When the URL stops working (ISO 8601 UTC).")
    saved_path: str | None = Field(None, description="A copy saved on this machine (stdio only).")
    model: str = ""
    media_type: str = ""
    bytes: int | None = Field(None, description="The image's size.")
    request_id: str | None = None
    note: str | None = Field(None, description="What could not be done (a copy not saved, the image not shown).")
    content: list[Any] = Field(default_factory=list, exclude=True)
    """The MCP content blocks sent beside the text (its link, the image itself)."""

    def extra_content(self) -> list[ContentBlock]:
        return list(self.content)

    def to_text(self) -> str:
        if self.status == "running":
            return paragraphs(f"The image is still being made. {self.next}", self.registry_text())
        saved = f"Saved as {self.saved_path}." if self.saved_path else ""
        resource = f"Resource: {self.resource}" if self.resource else ""
        return paragraphs(
            f"Image ({self.model}): {self.url}\nThe URL expires {self.expires_at}.", resource, saved, self.note or ""
        )


class VideoJob(RegistryNotes):
    """A video the platform makes: a job, and once it is done its video and cover URLs."""

    FIRST: ClassVar[tuple[str, ...]] = ("status", "next", "task_id", "videos", "error")

    status: JobState = Field(description="running: being made (minutes); completed: `videos` has it.")
    next: str | None = Field(None, description="With status running: the exact call that gets the video.")
    task_id: str = Field(description="Pass it to get_result.")
    videos: list[VideoFile] = Field(default_factory=list)
    error: ToolFailure | None = None
    model: str = ""
    request_id: str | None = None
    attempts: int = Field(1, description="Requests sent to submit it, when more than one.")
    content: list[Any] = Field(default_factory=list, exclude=True)
    """The MCP content blocks sent beside the text (the links of the video and its cover)."""

    def extra_content(self) -> list[ContentBlock]:
        return list(self.content)

    def to_text(self) -> str:
        if self.videos:
            listing = "\n".join(
                f"- {v.url}"
                + (f" (cover {v.cover_url})" if v.cover_url else "")
                + f", expires {v.expires_at}"
                + (f"; resource {v.resource}" if v.resource else "")
                for v in self.videos
            )
            return paragraphs(f"Video ready ({self.model}):\n{listing}", self.registry_text())
        if self.status == "running":
            return paragraphs(
                f"Video task {self.task_id} is being made ({self.model}). {self.next}", self.registry_text()
            )
        reason = self.error.to_text() if self.error else ""
        return paragraphs(f"Video task {self.task_id} {self.status}.", reason, self.registry_text())

    @classmethod
    def running_next(cls, task_id: str, wait_seconds: float) -> str:
        return next_call(task_id, wait_seconds, "for the video")


# --- images ---------------------------------------------------------------------------------------------


async def generate_image(app: AppState, ctx: Context, args: ImageArguments) -> ImageResult:
    """The image, shown as image content, with its URL, its expiry and (over stdio) a saved copy.

    CogView answers in one request, with a heartbeat while it draws; glm-image is a platform task, polled
    until the call's wait runs out and then handed back as a job that get_result finishes.
    """
    request = args.request(app.settings)
    spend = per_call(app.settings, request.model, f"generate_image: one image with {request.model}")
    await confirm_spend(app, ctx, spend)
    default_wait = app.settings.results.wait_seconds
    wait = task_wait(args.wait(default_wait))
    reporter = ProgressReporter(ctx, total=wait)
    if request.model.startswith(ASYNC_IMAGE_MODELS):
        task = await _submitted(app.glm.submit_image(request, attempts=Attempts()), request.request_id)
        not_recorded = await app.jobs.record_task(_record(app, task, "image_task", request.prompt, request.model))
        state = await _poll(app, task.id, wait, reporter, "image")
        if state.state == "running":
            registry = registry_note(app, not_recorded)
            return ImageResult(
                status="running",
                task_id=task.id,
                next=VideoJob.running_next(task.id, default_wait).replace("the video", "the image"),
                model=request.model,
                request_id=request.request_id,
                not_recorded=registry.not_recorded,
                registry_notice=registry.notice,
            )
        await _finish_record(app, task.id, await TaskResult.from_poll(task.id, state).with_media(app))
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
    """The image offered as a resource, inline where GLM_MEDIA_INLINE says, and saved over stdio; what cannot be done
    is said, not raised.

    Except a file glm-mcp refuses (`GLMFileRefusedError`: an address an answer may not send it to, a body that
    is not an image): the call fails with it, saving nothing, as the answer that named it is not the platform's.
    """
    expires = expiry(url, created)
    title = f"Image ({model})"
    try:
        data, media_type = await app.glm.download(url)
    except GLMFileRefusedError:
        raise
    except GLMError as exc:
        link = await offer(app, MediaFile(url, *named("image", url, "image/png"), expires, title=title))
        return ImageResult(
            resource=link.uri if link else "",
            url=url,
            expires_at=expires_at(url, created),
            model=model,
            request_id=request_id,
            note=f"The image could not be fetched to show it: {exc}",
            content=link_blocks(ctx, [link]),
        )
    notes: list[str] = []
    saved: str | None = None
    if ctx.request_context.request is None or getattr(ctx.request_context.request, "headers", None) is None:
        try:
            saved = str(await anyio.to_thread.run_sync(_save, app.settings.registry.images_dir, data, media_type))
        except OSError as exc:
            notes.append(
                f"No copy was saved in {app.settings.registry.images_dir} (GLM_IMAGE_DIR): {exc.strerror or exc}."
            )
    name, _ = named("image", url, "image/png", media_type)
    link = await offer(app, MediaFile(url, name, media_type, expires, title=title, data=data, saved_path=saved))
    content: list[ContentBlock] = []
    if inline_wanted(app.settings, ctx) or link is None:
        content.append(ImageContent(type="image", data=base64.b64encode(data).decode("ascii"), mime_type=media_type))
    content += link_blocks(ctx, [link])
    return ImageResult(
        resource=link.uri if link else "",
        url=url,
        expires_at=expires_at(url, created),
        model=model,
        request_id=request_id,
        media_type=media_type,
        bytes=len(data),
        saved_path=saved,
        content=content,
        note=" ".join(notes) or None,
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
    spend = per_call(app.settings, request.model, f"generate_video: one video with {request.model}")
    await confirm_spend(app, ctx, spend)
    attempts = Attempts()
    task = await _submitted(app.glm.submit_video(request, attempts=attempts), request.request_id)
    await accounting.record(app, "generate_video", request.model)
    summary = request.prompt or "(from an image)"
    not_recorded = await app.jobs.record_task(_record(app, task, "video_task", summary, request.model))
    wait = task_wait(args.wait(app.settings.results.wait_seconds))
    state = await _poll(app, task.id, wait, ProgressReporter(ctx, total=wait), "video")
    registry = registry_note(app, not_recorded)

    def video_job(
        *, next_step: str | None = None, videos: list[VideoFile] | None = None, error: ToolFailure | None = None
    ) -> VideoJob:
        model = task.model or request.model
        return VideoJob(
            status=state.state,
            next=next_step,
            task_id=task.id,
            videos=videos or [],
            error=error,
            model=model,
            request_id=task.request_id or request.request_id,
            attempts=attempts.count,
            not_recorded=registry.not_recorded,
            registry_notice=registry.notice,
            content=link_blocks(ctx, file_links([], videos or [], model)),
        )

    if state.state == "running":
        return video_job(next_step=VideoJob.running_next(task.id, app.settings.results.wait_seconds))
    result = await TaskResult.from_poll(task.id, state).with_media(app)
    await _finish_record(app, task.id, result)
    videos = result.videos
    error = result.error
    if state.state == "failed" and error is None:
        error = await app.describe_failure(MediaTaskFailed(task.id, "video"))
    return video_job(videos=videos, error=error)


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


# --- the tools ----------------------------------------------------------------------------------------------

GENERATE_IMAGE = ToolSpec(
    "generate_image",
    "Generate an image",
    "Draw an image from a prompt with CogView-4 or glm-image. Returns its `resource` (a glm-media:// URI to read "
    "it), its URL and expiry, and over stdio a saved copy's path. A long glm-image generation comes back as "
    "status running with `next`.",
    generate_image,
    ImageArguments,
    ImageResult,
    STARTS,
    toolset="images",
)

GENERATE_VIDEO = ToolSpec(
    "generate_video",
    "Generate a video",
    "Make a short video from a prompt and/or a first image with CogVideoX or Vidu. It takes minutes: the "
    "call returns a job (status running, task_id, `next`); get_result gives the video and cover URLs and "
    "resources.",
    generate_video,
    VideoArguments,
    VideoJob,
    STARTS,
    toolset="video",
)
