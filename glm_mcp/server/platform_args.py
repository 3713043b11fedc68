"""What the platform tools beyond chat accept (web_search, read_url, generate_image, generate_video, list_models,
usage), and the GLM request each becomes. Field-level rules are the models'; rules across fields are checked here,
before anything is sent."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from glm_mcp.config import Settings
from glm_mcp.errors import ArgumentError
from glm_mcp.glm.types import (
    ContentSize,
    ImageQuality,
    ImageRequest,
    ReaderFormat,
    ReaderRequest,
    RecencyFilter,
    SearchEngine,
    VideoQuality,
    VideoRequest,
    WebSearchRequest,
)
from glm_mcp.server.arguments import new_request_id

SIZE_PATTERN = r"^\d{3,4}x\d{3,4}$"


class _Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Wait(_Arguments):
    wait_seconds: Annotated[
        float | None,
        Field(description="Seconds to wait; then status running and `next`. Default 45.", ge=0, le=3600),
    ] = None

    def wait(self, default: float) -> float:
        return default if self.wait_seconds is None else self.wait_seconds


class SearchArguments(_Arguments):
    """`web_search`: the platform's search engine alone, no model answer."""

    query: Annotated[str, Field(description="What to search for.", min_length=1, max_length=4096)]
    engine: Annotated[SearchEngine, Field(description="Search engine.")] = "search_std"
    count: Annotated[int, Field(description="Results, 1-50 (search_pro_sogou: 10-50 by tens).", ge=1, le=50)] = 10
    domain: Annotated[str, Field(description="Only this domain's pages.", max_length=253)] = ""
    recency: Annotated[RecencyFilter | None, Field(description="Only pages from this period.")] = None
    content_size: Annotated[
        ContentSize | None, Field(description="Text per result: medium 400-600 chars, high ~2500.")
    ] = None

    def request(self) -> WebSearchRequest:
        if not self.query.strip():
            raise ArgumentError("query", "it is empty; give what to search for.")
        if self.engine == "search_pro_sogou" and self.count % 10:
            raise ArgumentError("count", "search_pro_sogou takes 10, 20, 30, 40 or 50.")
        return WebSearchRequest(
            search_query=self.query.strip(),
            search_engine=self.engine,
            count=self.count,
            search_domain_filter=self.domain or None,
            search_recency_filter=self.recency,
            content_size=self.content_size,
            request_id=new_request_id(),
        )


class ReadArguments(_Arguments):
    """`read_url`: one page through the platform's reader."""

    url: Annotated[str, Field(description="The page, http(s).", pattern=r"^https?://\S+$", max_length=4096)]
    format: Annotated[ReaderFormat, Field(description="markdown or plain text.")] = "markdown"
    links: Annotated[bool, Field(description="Also list the page's links.")] = False
    images: Annotated[bool, Field(description="Also list its images.")] = False
    fresh: Annotated[bool, Field(description="Fetch it again, not from the reader's cache.")] = False
    offset: Annotated[int, Field(description="A long page's next_offset: read on from there.", ge=0)] = 0

    def request(self) -> ReaderRequest:
        return ReaderRequest(
            url=self.url,
            return_format=self.format,
            with_links_summary=self.links or None,
            with_images_summary=self.images or None,
            no_cache=self.fresh or None,
            request_id=new_request_id(),
        )


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
            model=self.model.strip() or settings.image_model,
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
            model=self.model.strip() or settings.video_model,
            prompt=self.prompt or None,
            image_url=self.image_url or None,
            quality=self.quality,
            size=self.size or None,
            duration=self.duration,
            fps=self.fps,
            with_audio=self.with_audio,
            request_id=new_request_id(),
        )


class ModelsArguments(_Arguments):
    """`list_models`: which models."""

    kind: Annotated[Literal["chat", "image", "video"] | None, Field(description="Only models of this kind.")] = None


class UsageArguments(_Arguments):
    """`usage`: which span of the recorded calls, grouped how."""

    days: Annotated[int, Field(description="The last this many days, today included.", ge=1, le=366)] = 7
    by: Annotated[Literal["day", "model", "day_model"], Field(description="Group by.")] = "day_model"
