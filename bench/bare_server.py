"""The floor for any stdio server on this SDK: a bare `MCPServer` with one trivial tool.

Run as `python -m bench.bare_server`; it speaks MCP over stdio like `glm-mcp` does.
"""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

server = MCPServer("bare")


@server.tool()
async def echo(text: str) -> str:
    """Return `text` unchanged: the least work a tool can do."""
    return text


if __name__ == "__main__":
    server.run()
