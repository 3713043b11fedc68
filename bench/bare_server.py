"""The floor for any server on this SDK: a bare `MCPServer`.

`python -m bench.bare_server`: over stdio, with one trivial tool (the cold-start and idle-memory floor).

`python -m bench.bare_server --upstream URL [--http PORT [--stateless]]`: over stdio, or over Streamable
HTTP, with one more tool `chat(prompt)` that makes the same streamed request as glm-mcp (the body is
read from the environment variable BENCH_UPSTREAM_BODY, built by glm-mcp's own code, with the call's
prompt in place of the one it was built with) and returns its text: the least any MCP server doing
that upstream call can cost (the per-call and load floors).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from mcp.server.mcpserver import MCPServer

if TYPE_CHECKING:
    import httpx2

server = MCPServer("bare")


@server.tool()
async def echo(text: str) -> str:
    """Return `text` unchanged: the least work a tool can do."""
    return text


async def streamed_text(http: httpx2.AsyncClient, url: str, body: bytes, headers: dict[str, str]) -> str:
    """The streamed chat completion's text, read to the end: the least a tool making this request can do
    (also the floor of the upstream client in bench/breakdown.py)."""
    import json

    parts: list[str] = []
    async with http.stream("POST", url, content=body, headers=headers) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if line.startswith("data:") and line[5:].strip() != "[DONE]":
                for choice in json.loads(line[5:])["choices"]:
                    parts.append(choice["delta"].get("content") or "")
    return "".join(parts)


def add_chat(upstream: str, max_connections: int) -> None:
    """The tool `chat(prompt)`: the same streamed upstream request as glm-mcp's, its text returned."""
    import json
    import os

    import httpx2

    body = os.environ["BENCH_UPSTREAM_BODY"].encode()
    built_with = json.loads(body)["messages"][-1]["content"]
    placeholder = json.dumps(built_with).encode()
    headers = {"Authorization": f"Bearer {os.environ['BENCH_UPSTREAM_KEY']}", "Content-Type": "application/json"}
    # httpx2's default keep-alive (20 idle connections), enough connections that nothing queues.
    limits = httpx2.Limits(max_connections=max_connections, max_keepalive_connections=20)
    http = httpx2.AsyncClient(limits=limits, timeout=httpx2.Timeout(300.0), trust_env=False)
    url = upstream.rstrip("/") + "/chat/completions"

    @server.tool()
    async def chat(prompt: str) -> str:
        """The streamed chat completion's text, read to the end."""
        sent = body if prompt == built_with else body.replace(placeholder, json.dumps(prompt).encode(), 1)
        return await streamed_text(http, url, sent, headers)


def serve_http(port: int, stateless: bool) -> None:
    """The server over Streamable HTTP."""
    import uvicorn

    app = server.streamable_http_app(stateless_http=stateless)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def main(argv: list[str]) -> None:
    if not argv:  # the stdio floor imports nothing more than it needs
        server.run()
        return
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.bare_server")
    parser.add_argument("--upstream", metavar="URL", required=True)
    parser.add_argument("--stateless", action="store_true")
    parser.add_argument("--max-connections", type=int, default=1000)
    parser.add_argument("--http", type=int, metavar="PORT", help="over Streamable HTTP (else stdio)")
    args = parser.parse_args(argv)
    add_chat(args.upstream, args.max_connections)
    if args.http is None:
        server.run()
    else:
        serve_http(args.http, args.stateless)


if __name__ == "__main__":
    main(sys.argv[1:])
