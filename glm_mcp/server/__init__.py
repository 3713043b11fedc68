"""The MCP face: tool handlers, result models and the HTTP app. Nothing in here speaks HTTP to GLM."""

from glm_mcp.server.app import create_server

__all__ = ["create_server"]
