"""Generated images and videos as MCP resources: a link in the result, the bytes read back while they last.

A tool holding a file the platform made offers it here (`offer`): the file is recorded for the caller
(`glm_mcp.jobs.media`, in the registry, so its link outlives the process) and gets a URI of ours,
`glm-media://<id>/<name>`, which the tool's result carries in its `structuredContent` (Claude Code hands its model
nothing else of a successful result) and as a `resource_link` content block (`link_blocks`: protocol 2025-06-18 and
later; an older client has no such block and is given the image inline instead, `inline_wanted`).

`resources/read` of such a URI serves the bytes as a base64 blob: the copy saved on this machine, while it has the
content recorded, else the platform's file, fetched the way the tool fetched it (`GLMClient.download`: a public
address or the API's own origin, pinned, and only what it must be), until its URL expires; then the error says to
generate it again. Only the caller it was made for can read it: to anyone else the URI is unknown, as one never
made is. `resources/templates/list` shows the template and `resources/list` the caller's latest (`LIST_LIMIT`).

The template is the SDK's (so a read passes its checks and gets the caller's context); a server middleware
(`MediaResources`) adds the caller's files to `resources/list` and gives each blob read the media type its bytes
are (the SDK gives every resource of a template the template's one). Nothing here knows a tool by name.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import anyio
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types import ContentBlock, ResourceLink
from mcp_types.jsonrpc import INTERNAL_ERROR, INVALID_PARAMS
from mcp_types.version import is_version_at_least

from glm_mcp.config import Settings
from glm_mcp.errors import GlmMcpError, MediaExpiredError, UnknownMediaError
from glm_mcp.glm import GLMAPIError
from glm_mcp.glm.fetch import file_type
from glm_mcp.jobs import RegistryUnavailable
from glm_mcp.jobs.media import MEDIA_RETENTION_DAYS, MediaRecord, media_id
from glm_mcp.server.result import paragraphs
from glm_mcp.server.state import AppState

__all__ = [
    "LINKS_SINCE",
    "LIST_LIMIT",
    "SCHEME",
    "TEMPLATE",
    "MediaFile",
    "MediaLink",
    "MediaResources",
    "inline_wanted",
    "link_blocks",
    "offer",
    "read_media",
    "serve_media",
    "speaks_links",
]

logger = logging.getLogger(__name__)

SCHEME = "glm-media"
TEMPLATE = SCHEME + "://{media}/{name}"
LIST_LIMIT = 50
"""The caller's latest files `resources/list` lists (older ones are still read by their URI)."""
LINKS_SINCE = "2025-06-18"
"""The protocol version that brought `resource_link` content blocks (and a resource's `title` and `size`)."""
_GONE_STATUSES = frozenset({403, 404, 410})
"""What a file host answers for a file it no longer keeps (object storage answers 403 for an expired signature)."""
_SNIFF_CHARS = 4096
"""The start of a blob's base64 decoded to tell its media type by its magic bytes (3 KiB: an animated PNG's `acTL`
comes before its first frame)."""


@dataclass(frozen=True, slots=True)
class MediaFile:
    """A file the platform made, as a tool offers it."""

    url: str
    name: str
    """Its file name in the URI: `image.png`, `video.mp4`, `cover.jpg`."""
    mime_type: str
    expires_at: float
    """When the platform's URL stops working (unix time)."""
    title: str = ""
    data: bytes | None = None
    """Its bytes, when the tool read them (its size and hash are recorded, not the bytes)."""
    saved_path: str | None = None
    """The copy the tool saved on this machine."""


@dataclass(frozen=True, slots=True)
class MediaLink:
    """A file offered as a resource: what a result says of it."""

    uri: str
    name: str
    mime_type: str
    title: str = ""
    size: int | None = None

    def block(self) -> ResourceLink:
        """The `resource_link` content block of this file."""
        return ResourceLink(
            type="resource_link",
            uri=self.uri,
            name=self.name,
            title=self.title or None,
            mime_type=self.mime_type,
            size=self.size,
        )


async def offer(app: AppState, file: MediaFile) -> MediaLink | None:
    """`file` recorded for this request's caller and linked; None when the registry cannot record it (logged): the
    result still has the file's URL."""
    data = file.data
    record = MediaRecord(
        id=media_id(app.principal, file.url),
        principal=app.principal,
        name=file.name,
        mime_type=file.mime_type,
        url=file.url,
        expires_at=file.expires_at,
        title=file.title,
        size=len(data) if data is not None else None,
        sha256=hashlib.sha256(data).hexdigest() if data is not None else None,
        saved_path=file.saved_path,
    )
    try:
        await app.media.put(record)
    except RegistryUnavailable as exc:
        logger.warning("%s is not offered as a resource: %s %s", file.name, exc, exc.fix)
        return None
    return MediaLink(_uri(record), record.name, record.mime_type, record.title, record.size)


def speaks_links(ctx: Context) -> bool:
    """Whether this request's protocol has `resource_link` content blocks."""
    return is_version_at_least(ctx.request_context.protocol_version, LINKS_SINCE)


def link_blocks(ctx: Context, links: Sequence[MediaLink | None]) -> list[ContentBlock]:
    """The `resource_link` blocks of `links` for this request: none for a protocol that has no such block (its
    client would refuse the whole result), whose client reads the URIs in the structured content instead."""
    return [link.block() for link in links if link is not None] if speaks_links(ctx) else []


def inline_wanted(settings: Settings, ctx: Context) -> bool:
    """Whether the image itself goes in the result as image content (GLM_MEDIA_INLINE): `always`, `never`, or
    `auto`, only for a client that cannot be given a link instead."""
    policy = settings.results.media_inline
    return policy == "always" or (policy == "auto" and not speaks_links(ctx))


# --- reading -------------------------------------------------------------------------------------------------


async def read_media(app: AppState, media: str, name: str) -> bytes:
    """The bytes of this request's caller's file `media`/`name`: its copy on this machine while it has the content
    recorded, else the platform's file while its URL lasts; `UnknownMediaError` or `MediaExpiredError` otherwise."""
    uri = f"{SCHEME}://{media}/{name}"
    record = await app.media.get(media, principal=app.principal)
    if record is None or record.name != name:
        raise UnknownMediaError(uri, MEDIA_RETENTION_DAYS)
    if record.saved_path and record.sha256:
        saved = Path(record.saved_path)
        copy = await anyio.to_thread.run_sync(_saved_copy, saved, app.settings.registry.images_dir, record)
        if copy is not None:
            return copy
    if time.time() >= record.expires_at:
        why = f"the platform's URL for it expired at {_iso(record.expires_at)}"
        raise MediaExpiredError(uri, why, record.saved_path)
    try:
        data, _ = await app.glm.download(record.url, "image" if record.mime_type.startswith("image/") else "video")
    except GLMAPIError as exc:
        if exc.status_code not in _GONE_STATUSES:
            raise
        why = f"the platform no longer serves it (HTTP {exc.status_code})"
        raise MediaExpiredError(uri, why, record.saved_path) from exc
    return data


def _saved_copy(path: Path, images_dir: Path, record: MediaRecord) -> bytes | None:
    """The copy at `path` if it is still the file recorded: a regular file in GLM_IMAGE_DIR, not a link, with the
    recorded content; None otherwise (then the platform's file is read)."""
    try:
        if not path.resolve().is_relative_to(images_dir.resolve()):
            return None
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            return None
        data = file.read((record.size or 0) + 1)
    return data if hashlib.sha256(data).hexdigest() == record.sha256 else None


# --- serving -------------------------------------------------------------------------------------------------


def serve_media(server: MCPServer[AppState]) -> None:
    """Serve the media resources on `server`: the template, read by `read_media`, and `MediaResources`."""

    @server.resource(
        TEMPLATE,
        name="media",
        title="Generated images and videos",
        description="An image or video a tool made for you (its result links it), read back while the platform keeps "
        "it, or from the copy saved on this machine. `resources/list` lists your latest.",
        mime_type="application/octet-stream",  # each read says its own (`MediaResources`); the template says none
    )
    async def read(ctx: Context, media: str, name: str) -> bytes:
        app = cast(AppState, ctx.request_context.lifespan_context)
        try:
            app = app.for_request(ctx)
            return await read_media(app, media, name)
        except Exception as exc:
            uri = f"{SCHEME}://{media}/{name}"
            failure = await app.describe_failure(exc)
            code = INVALID_PARAMS if isinstance(exc, UnknownMediaError | MediaExpiredError) else INTERNAL_ERROR
            data = {"uri": uri, **failure.structured()} if isinstance(exc, GlmMcpError) else {"uri": uri}
            raise MCPError(code, paragraphs(failure.message, failure.hint or ""), data) from exc

    server.middleware.append(MediaResources())


class MediaResources:
    """The server middleware of the media resources: `resources/list` with the caller's latest files, each blob read
    with the media type its bytes are, and the template listed without the one media type the SDK gives it."""

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        if not isinstance(result, dict):
            return result
        params = ctx.params or {}
        if ctx.method == "resources/list" and not params.get("cursor"):
            return {**result, "resources": [*result.get("resources", []), *await _listed(ctx)]}
        if ctx.method == "resources/read" and str(params.get("uri", "")).startswith(SCHEME + "://"):
            return {**result, "contents": [_typed(content) for content in result.get("contents", [])]}
        if ctx.method == "resources/templates/list":
            templates = [
                {k: v for k, v in template.items() if k != "mimeType"}
                if template.get("uriTemplate") == TEMPLATE
                else template
                for template in result.get("resourceTemplates", [])
            ]
            return {**result, "resourceTemplates": templates}
        return result


async def _listed(ctx: ServerRequestContext[Any, Any]) -> list[dict[str, Any]]:
    """The caller's latest files as `resources/list` entries, in the shape of the request's protocol."""
    try:
        app = cast(AppState, ctx.lifespan_context).for_http(ctx.request)
        records = await app.media.recent(principal=app.principal, limit=LIST_LIMIT)
    except GlmMcpError as exc:  # the registry unavailable, a caller key refused: the rest is listed
        logger.warning("resources/list without the caller's media: %s", exc)
        return []
    newer = is_version_at_least(ctx.protocol_version, LINKS_SINCE)
    listed: list[dict[str, Any]] = []
    for record in records:
        served = "Until" if record.expires_at > time.time() else "The platform kept it until"
        entry: dict[str, Any] = {
            "uri": _uri(record),
            "name": record.name,
            "description": f"{served} {_iso(record.expires_at)}."
            + (" A copy is saved on this machine." if record.saved_path else ""),
            "mimeType": record.mime_type,
        }
        if newer:
            entry.update({"title": record.title} if record.title else {})
            entry.update({"size": record.size} if record.size is not None else {})
        listed.append(entry)
    return listed


def _typed(content: Any) -> Any:
    """A blob read with the media type its bytes are."""
    if not isinstance(content, dict) or not isinstance(content.get("blob"), str):
        return content
    found = file_type(base64.b64decode(content["blob"][:_SNIFF_CHARS]), "video")
    return {**content, "mimeType": found} if found else content


def _uri(record: MediaRecord) -> str:
    return f"{SCHEME}://{record.id}/{record.name}"


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")
