"""Files the platform makes (images, videos) as results carry them: their URLs, when those expire, and their links.

The platform's file URLs are temporary. A signed URL states its expiry (`Expires=<unix seconds>`, as object
storage signs them, and the emulator's `expires=`); otherwise the figure the CogView docs quote, 30 days from
creation, is assumed (docs/glm-endpoints.md). Each file is also offered as a resource of the caller's
(`server/media.py`): its `glm-media://` URI is in the result, and the client reads the bytes from it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import PurePosixPath
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from glm_mcp.glm.types import AsyncImageResult, AsyncTaskResult, VideoTaskResult
from glm_mcp.server.media import MediaFile, MediaLink, offer
from glm_mcp.server.state import AppState

__all__ = [
    "ASSUMED_LIFETIME_S",
    "MEDIA_TYPES",
    "ImageFile",
    "VideoFile",
    "expires_at",
    "expiry",
    "file_links",
    "media_of",
    "named",
    "offer_files",
]

ASSUMED_LIFETIME_S = 30 * 24 * 3600
"""How long a URL that does not say its expiry is taken to live."""
MEDIA_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".apng": "image/apng",
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
}
"""The media type of a file by its name's suffix, as the platform names its files (the bytes decide when read)."""
_SUFFIXES = {media_type: suffix for suffix, media_type in reversed(MEDIA_TYPES.items())}


def expiry(url: str, created: float | None = None) -> float:
    """When `url` stops working, unix time: its own `Expires`, else `created` (default now) plus 30 days."""
    for name, value in parse_qsl(urlsplit(url).query):
        if name.lower() == "expires" and value.isdigit():
            return float(value)
    return (created or time.time()) + ASSUMED_LIFETIME_S


def expires_at(url: str, created: float | None = None) -> str:
    """`expiry` in ISO 8601 UTC."""
    return _iso(expiry(url, created))


def named(stem: str, url: str, default: str, media_type: str | None = None) -> tuple[str, str]:
    """The file name (`image.png`) and media type of a file at `url`: by `media_type` when its bytes told it, else by
    the URL's suffix, else `default`."""
    if media_type is None:
        media_type = MEDIA_TYPES.get(PurePosixPath(urlsplit(url).path).suffix.lower(), default)
    return stem + _SUFFIXES.get(media_type, ""), media_type


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


_RESOURCE = "Its glm-media:// resource: resources/read gives its bytes while the platform keeps it."


class ImageFile(BaseModel):
    model_config = ConfigDict(defer_build=True)

    url: str = Field(description="Where the platform serves the image, until expires_at.")
    expires_at: str = Field(description="When the URL stops working (ISO 8601 UTC): keep a copy if you need it.")
    resource: str = Field("", description=_RESOURCE)


class VideoFile(BaseModel):
    model_config = ConfigDict(defer_build=True)

    url: str = Field(description="The video, until expires_at.")
    cover_url: str = Field("", description="Its cover image.")
    expires_at: str = Field(description="When the URLs stop working (ISO 8601 UTC).")
    resource: str = Field("", description=_RESOURCE)
    cover_resource: str = Field("", description="The cover's resource.")


async def offer_files(
    app: AppState, images: Sequence[ImageFile], videos: Sequence[VideoFile], model: str
) -> tuple[list[ImageFile], list[VideoFile]]:
    """`images` and `videos` offered to this request's caller as resources, each with its `resource` URI (left empty
    where the registry could not record it: the URL is still there)."""

    async def link(url: str, stem: str, default: str, title: str) -> str:
        name, media_type = named(stem, url, default)
        offered = await offer(app, MediaFile(url, name, media_type, expiry(url), title=f"{title} ({model})"))
        return offered.uri if offered is not None else ""

    kept_images = [
        image.model_copy(update={"resource": await link(image.url, "image", "image/png", "Image")}) for image in images
    ]
    kept_videos = []
    for video in videos:
        update = {"resource": await link(video.url, "video", "video/mp4", "Video")}
        if video.cover_url:
            update["cover_resource"] = await link(video.cover_url, "cover", "image/png", "Video cover")
        kept_videos.append(video.model_copy(update=update))
    return kept_images, kept_videos


def file_links(images: Sequence[ImageFile], videos: Sequence[VideoFile], model: str) -> list[MediaLink]:
    """The links of the files offered (those with a `resource`), as a result's content blocks name them."""
    offered = [(i.resource, "Image") for i in images]
    offered += [pair for v in videos for pair in ((v.resource, "Video"), (v.cover_resource, "Video cover"))]
    links = []
    for uri, title in offered:
        if uri:
            name = uri.rpartition("/")[2]
            media_type = MEDIA_TYPES.get(PurePosixPath(name).suffix, "application/octet-stream")
            links.append(MediaLink(uri, name, media_type, f"{title} ({model})" if model else title))
    return links


def media_of(poll: AsyncTaskResult) -> tuple[list[ImageFile], list[VideoFile]]:
    """The images and videos a finished platform task made: a poll of an image or video task is read again
    as its own typed answer (`image_result` / `video_result`), which a chat task's poll does not have."""
    raw = poll.model_dump()
    images = [
        ImageFile(url=item.url, expires_at=expires_at(item.url))
        for item in AsyncImageResult.model_validate(raw).image_result
        if item.url
    ]
    videos = [
        VideoFile(url=item.url, cover_url=item.cover_image_url, expires_at=expires_at(item.url))
        for item in VideoTaskResult.model_validate(raw).video_result
        if item.url
    ]
    return images, videos
