"""Files the platform makes (images, videos) as results carry them: their URLs and when those expire.

The platform's file URLs are temporary. A signed URL states its expiry (`Expires=<unix seconds>`, as object
storage signs them, and the emulator's `expires=`); otherwise the figure the CogView docs quote, 30 days from
creation, is assumed (docs/glm-endpoints.md).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from glm_mcp.glm.types import AsyncImageResult, AsyncTaskResult, VideoTaskResult

__all__ = ["ASSUMED_LIFETIME_S", "ImageFile", "VideoFile", "expires_at", "media_of"]

ASSUMED_LIFETIME_S = 30 * 24 * 3600
"""How long a URL that does not say its expiry is taken to live."""


def expires_at(url: str, created: float | None = None) -> str:
    """When `url` stops working, ISO 8601 UTC: its own `Expires`, else `created` (default now) plus 30 days."""
    for name, value in parse_qsl(urlsplit(url).query):
        if name.lower() == "expires" and value.isdigit():
            return _iso(float(value))
    return _iso((created or time.time()) + ASSUMED_LIFETIME_S)


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


class ImageFile(BaseModel):
    model_config = ConfigDict(defer_build=True)

    url: str = Field(description="Where the platform serves the image, until expires_at.")
    expires_at: str = Field(description="When the URL stops working (ISO 8601 UTC): keep a copy if you need it.")


class VideoFile(BaseModel):
    model_config = ConfigDict(defer_build=True)

    url: str = Field(description="The video, until expires_at.")
    cover_url: str = Field("", description="Its cover image.")
    expires_at: str = Field(description="When the URLs stop working (ISO 8601 UTC).")


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
