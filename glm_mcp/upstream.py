"""The GLM client as the settings describe it: one place, so the server and `doctor` cannot drift."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from glm_mcp.config import Settings
from glm_mcp.glm import GLMClient, RetryPolicy, open_http_client
from glm_mcp.glm.client import LazyHTTPClient, UpstreamLimits


@asynccontextmanager
async def open_glm_client(
    settings: Settings, *, base_url: str | None = None, timeout: float | None = None
) -> AsyncIterator[GLMClient]:
    """A pooled GLM client for `settings` (another `base_url` or read `timeout` if given), closed on exit."""
    http = LazyHTTPClient(
        functools.partial(
            open_http_client,
            base_url or settings.upstream.base_url,
            timeout=settings.upstream.timeout if timeout is None else timeout,
            connect_timeout=settings.upstream.connect_timeout,
            max_connections=settings.upstream.max_concurrency,
            headers=settings.upstream.request_headers,
        )
    )
    try:
        yield GLMClient(
            http,
            settings.upstream.credentials,
            retry=RetryPolicy(max_retries=settings.upstream.max_retries, budget=settings.upstream.retry_budget),
            max_concurrency=settings.upstream.max_concurrency,
            limits=UpstreamLimits(
                call_deadline=settings.upstream.call_deadline,
                max_response_bytes=settings.upstream.max_response_bytes,
                max_answer_chars=settings.upstream.max_answer_chars,
            ),
        )
    finally:
        await http.aclose()
