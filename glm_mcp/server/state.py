"""What lives for the whole server process: the settings, the one pooled GLM client and the job registry,
opened when the server starts serving (`lifespan`) and closed when it stops."""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

import anyio
from mcp.server.mcpserver import Context, MCPServer
from starlette.requests import Request

from glm_mcp.config import Settings
from glm_mcp.errors import GenerationFailed
from glm_mcp.glm import GLMAPIError, GLMClient, GLMError
from glm_mcp.glm.tokens import TokenCounts
from glm_mcp.jobs import SERVER, JobRunner, JobStore, Principal, RegistryUnavailable
from glm_mcp.jobs.batches import BatchFollowers
from glm_mcp.jobs.conversations import ConversationStore
from glm_mcp.jobs.extracts import ExtractRecords, ExtractStore
from glm_mcp.jobs.media import MediaRecords, MediaStore
from glm_mcp.jobs.open import open_job_store, open_record_stores
from glm_mcp.jobs.principal import SECRET_BYTES
from glm_mcp.jobs.usage import UsageStore
from glm_mcp.server.failures import ToolFailure, describe_failure
from glm_mcp.upstream import open_glm_client

__all__ = ["AppState", "lifespan", "principal_secret", "registry_of"]

logger = logging.getLogger(__name__)

_REGISTRIES: WeakKeyDictionary[MCPServer[Any], JobStore] = WeakKeyDictionary()
"""The job store each serving server has open, for the HTTP readiness probe (which has no MCP context)."""

# An error report must not wait long on a second call to the platform.
_MODEL_LIST_TIMEOUT_S = 5.0
_BATCH_TOOLSET = "batch"
"""The toolset (`Settings.server.toolsets`) whose server takes over the batches whose follower is gone."""


@dataclass(slots=True)
class AppState:
    """What a tool call works with: the settings, the GLM client, the jobs and the stores. One per process (the
    lifespan's); `for_request` gives each call its own view, with the caller's key and principal when it sent one."""

    settings: Settings
    glm: GLMClient
    jobs: JobRunner
    store: JobStore
    conversations: ConversationStore
    usage: UsageStore
    """Every call's cost (`glm_mcp.jobs.usage`), in the same database."""
    extracts: ExtractStore
    """What documents and recordings were read as, by content (`glm_mcp.jobs.extracts`), in the same database."""
    batches: BatchFollowers
    """The platform batches this process follows until they end (`glm_mcp.jobs.batches`)."""
    media: MediaStore
    """The images and videos offered to callers as resources (`glm_mcp.jobs.media`), in the same database."""
    principal_secret: bytes = b""
    """What callers' keys are hashed with to make their principal: the job store's own secret."""
    principal: Principal = SERVER
    """Who this request is (`glm_mcp.jobs.principal`): "server" for the server's key, "key:<hex>" for a
    caller's own; the jobs it starts are theirs, and it sees only theirs."""
    token_counts: TokenCounts = field(default_factory=TokenCounts)
    """The platform tokenizer's counts of prompts, by content and caller (`glm.tokens`): one for the process."""

    def for_request(self, ctx: Context) -> AppState:
        """The state one tool call works with: the server's key, or the caller's own when it sent one,
        and the principal that makes it."""
        return self.for_http(ctx.request_context.request)

    def for_http(self, request: object) -> AppState:
        """`for_request` from the transport's request object alone (what a lowlevel handler, such as
        `tasks/get`, has): the caller key the HTTP layer read, if any."""
        if not isinstance(request, Request):  # stdio or in process: the server's key
            return self
        # A caller's key and a sign-in come over HTTP only: what reads them is imported with the HTTP server
        # (server/http.py), not by every start (the stdio server never needs it).
        from glm_mcp.server.auth import CALLER_KEY_SCOPE, caller_key
        from glm_mcp.server.oauth import token_principal

        key = request.scope.get(CALLER_KEY_SCOPE)
        signed_in = token_principal(request.scope)
        if key is None:  # no header: the server's key
            return self if signed_in is None else dataclasses.replace(self, principal=signed_in)
        caller = caller_key(key, self.settings, self.principal_secret)
        glm = self.glm.with_credentials(caller.credentials)
        return dataclasses.replace(self, glm=glm, principal=signed_in or caller.principal)

    async def describe_failure(self, exc: BaseException) -> ToolFailure:
        """The failure report for `exc`; for an unknown model it lists the models the key can use."""
        models: list[str] | None = None
        cause = exc.cause if isinstance(exc, GenerationFailed) else exc
        if isinstance(cause, GLMAPIError) and cause.code == "1211":
            models = await self._model_names()
        key = self.glm.credentials
        return describe_failure(exc, self.settings, models=models, key_source=key.source if key else None)

    async def _model_names(self) -> list[str] | None:
        with anyio.move_on_after(_MODEL_LIST_TIMEOUT_S):
            try:
                return sorted(model.id for model in await self.glm.list_models())
            except GLMError:
                return None
        return None


async def principal_secret(store: JobStore, settings: Settings) -> bytes:
    """The store's secret for callers' principals, when callers may bring keys (b"" otherwise: never used).

    Read once at start-up. When the store cannot give it, a secret of this process is used: its
    callers still see their own jobs, and nobody else's, until it stops.
    """
    if not settings.http.allow_client_keys:
        return b""
    try:
        return await store.principal_secret()
    except RegistryUnavailable as exc:
        logger.warning(
            "%s %s Callers' own keys get a principal of this process only: after a restart they no longer "
            "see the jobs they start now.",
            exc,
            exc.fix,
        )
        return secrets.token_bytes(SECRET_BYTES)


def registry_of(server: MCPServer[Any]) -> JobStore | None:
    """The job store `server` has open while it serves; None before and after."""
    return _REGISTRIES.get(server)


def lifespan(settings: Settings) -> Callable[[MCPServer[Any]], AbstractAsyncContextManager[AppState]]:
    """The server's lifespan for `settings`: the job registry, the GLM client and the task group the jobs run in,
    open while it serves, where the batches of the server's key whose follower is gone are taken over when it offers
    the `batch` toolset (a server without it never looks, so its registry stays unopened until a call needs it); the
    chat jobs still running when it stops are recorded as interrupted (its batches are taken over by the next)."""

    @asynccontextmanager
    async def serving(this: MCPServer[Any]) -> AsyncIterator[AppState]:
        async with (
            open_job_store(settings) as store,
            open_record_stores(settings, store) as (conversations, usage),  # the last writes made as it closes
            open_glm_client(settings) as glm,
            anyio.create_task_group() as background,
        ):
            jobs = JobRunner(background, store)
            _REGISTRIES[this] = store
            try:
                secret = await principal_secret(store, settings)
                batches = BatchFollowers(background, store, usage, glm)
                if _BATCH_TOOLSET in settings.server.toolsets:  # else its start opens no registry for batches
                    background.start_soon(batches.run, name="glm-mcp batches taken over")
                yield AppState(
                    settings=settings,
                    glm=glm,
                    jobs=jobs,
                    store=store,
                    conversations=conversations,
                    usage=usage,
                    extracts=ExtractRecords(store.database),
                    batches=batches,
                    media=MediaRecords(store.database),
                    principal_secret=secret,
                )
            finally:
                _REGISTRIES.pop(this, None)
                await jobs.interrupt_running()  # recorded with their partial text, for after the restart
                background.cancel_scope.cancel()  # jobs still running end with the server

    return serving
