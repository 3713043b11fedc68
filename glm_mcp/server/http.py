"""Serving MCP over Streamable HTTP at /mcp, with a health endpoint for probes."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from glm_mcp import __version__

MCP_PATH = "/mcp"
HEALTH_PATH = "/healthz"


def create_http_app(server: MCPServer[Any], *, host: str = "127.0.0.1") -> Starlette:
    """The ASGI app: MCP at /mcp and GET /healthz.

    Binding a loopback `host` turns on the SDK's Host/Origin checks against DNS rebinding.
    """

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok", "server": "glm-mcp", "version": __version__})

    server.custom_route(HEALTH_PATH, methods=["GET"], include_in_schema=False)(health)
    return server.streamable_http_app(streamable_http_path=MCP_PATH, host=host)


def run_http(server: MCPServer[Any], *, host: str, port: int, log_level: str = "WARNING") -> None:
    """Serve until interrupted."""
    import uvicorn

    uvicorn.run(create_http_app(server, host=host), host=host, port=port, log_level=log_level.lower())
