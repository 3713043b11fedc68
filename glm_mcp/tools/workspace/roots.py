"""Where `files` may be read from: the roots the client declared, else GLM_FILES_ROOTS, else the working directory.

A client that declares roots (`roots/list`, in the protocol versions that have it) says which
directories its user is working in, and that is the most precise answer. Without them, the
directories of the setting; without that, the server's working directory (a stdio server is
started by the client in its project). Over HTTP the server's disk is not the caller's: files are
off unless GLM_FILES_ROOTS is set, and only its directories count.

`Roots.places` says where a path the caller sent lies in the roots by path logic alone, so a path or
pattern that starts outside every root is refused before anything outside them is looked at.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePath
from urllib.parse import unquote, urlparse

import anyio
from mcp.server.mcpserver import Context
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from glm_mcp.config import Settings
from glm_mcp.tools import files_offered

__all__ = ["ROOTS_TIMEOUT_S", "FilesUnavailable", "Place", "Roots", "allowed_roots"]

logger = logging.getLogger(__name__)

ROOTS_TIMEOUT_S = 5.0
"""How long the client is given to answer `roots/list` before the setting is used instead."""


class FilesUnavailable(Exception):
    """The `files` argument cannot be used on this connection (HTTP without GLM_FILES_ROOTS)."""


@dataclass(frozen=True, slots=True)
class Place:
    """A path inside one root: the root (resolved) and the names below it, without `.`, `..` or empty ones."""

    root: Path
    parts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Roots:
    """The directories files may be read from (resolved), and where they come from, for messages."""

    paths: tuple[Path, ...]
    source: str
    named: tuple[Path, ...] = ()
    """The same directories as they were declared, before their links were resolved (one for each of `paths`),
    so that a path spelled through a declared name (`/tmp/…` for `/private/tmp/…`) is inside too."""

    @classmethod
    def of(cls, declared: tuple[Path, ...], source: str) -> Roots:
        """The roots `declared` (absolute paths), resolved."""
        return cls(_resolved(declared), source, tuple(Path(os.path.normpath(path)) for path in declared))

    def describe(self) -> str:
        return f"{', '.join(str(p) for p in self.paths)} ({self.source})"

    def places(self, path: str) -> list[Place]:
        """Where `path` lies in the roots, by path logic alone (nothing is read): an absolute path in the first
        root that holds it, a relative one in each root it stays inside. `..` is taken as written (it removes
        the name before it), never through a link; empty when `path` is outside every root."""
        if os.path.isabs(path):
            normal = PurePath(os.path.normpath(path))
            for root, named in zip(self.paths, self.named or self.paths, strict=True):
                for spelling in (root, named):
                    if normal.is_relative_to(spelling):
                        return [Place(root, normal.relative_to(spelling).parts)]
            return []
        relative = PurePath(os.path.normpath(path))
        if relative.parts[:1] == ("..",):
            return []
        parts = tuple(part for part in relative.parts if part != ".")
        return [Place(root, parts) for root in self.paths]


async def allowed_roots(ctx: Context, settings: Settings) -> Roots:
    """The roots for this request; raises `FilesUnavailable` over HTTP without GLM_FILES_ROOTS."""
    over_http = ctx.headers is not None
    if over_http:
        if not files_offered(settings, over_http=True):
            raise FilesUnavailable(
                "`files` is off over HTTP: the server's disk is not the caller's. The server's operator can set "
                "GLM_FILES_ROOTS to the directories it may read; otherwise put the text in `prompt`."
            )
        return Roots.of(settings.files.roots, "GLM_FILES_ROOTS")
    declared = await _client_roots(ctx)
    if declared:
        return Roots.of(declared, "the roots your client declared")
    if settings.files.roots:
        return Roots.of(settings.files.roots, "GLM_FILES_ROOTS")
    return Roots.of((Path.cwd(),), "the server's working directory")


async def _client_roots(ctx: Context) -> tuple[Path, ...]:
    """The client's `file://` roots, when it declared the capability on a protocol version that has it."""
    capabilities = ctx.client_capabilities
    if capabilities is None or capabilities.roots is None or ctx.protocol_version not in HANDSHAKE_PROTOCOL_VERSIONS:
        return ()
    try:
        with anyio.fail_after(ROOTS_TIMEOUT_S), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecated in 2026-07-28, which this branch is not
            listed = await ctx.session.list_roots()
    except Exception as exc:  # a client that declares roots but cannot list them: the setting applies
        logger.warning("the client declared roots but roots/list failed: %s", exc)
        return ()
    paths = []
    for root in listed.roots:
        uri = urlparse(str(root.uri))
        if uri.scheme == "file":
            paths.append(Path(unquote(uri.path)))
    return tuple(paths)


def _resolved(paths: tuple[Path, ...]) -> tuple[Path, ...]:
    """Each root with its symlinks and `..` resolved, so a path inside it is compared with what it really is."""
    return tuple(Path(os.path.realpath(path)) for path in paths)
