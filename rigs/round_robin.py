"""A small round-robin HTTP load balancer for the replica tests and benchmarks: each request goes to the next replica.

Written for the tests (no sticky sessions, no health checks beyond this): a replica that refuses
the connection (killed) is skipped for that request, as a load balancer's health check would
soon do. Responses are streamed through, so an SSE answer arrives as it is written.

The tests run it in a thread of their own process (`round_robin`, to count where requests landed);
the benchmarks run it as a process of its own (`python -m rigs.round_robin PORT BACKEND...`), so its
CPU is read from /proc apart from the replicas'. It keeps at most `KEEP_ALIVE` idle connections: a
larger idle pool costs httpcore2 O(N) CPU per request (docs/httpcore2-pool.md).
"""

from __future__ import annotations

import argparse
import itertools
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import httpx2
import uvicorn
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host", "content-length"}
MAX_CONNECTIONS = 100
"""httpx2's default: plenty for the tests; the benchmarks ask for one per concurrent call."""
KEEP_ALIVE = 32
CONNECT_S = 2.0
"""Enough on an idle machine; a benchmark's burst of new connections to CPU-bound replicas needs longer."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RoundRobin:
    """The ASGI app: forwards every request to the next of `backends`; `landed` counts where each went."""

    def __init__(
        self, backends: list[str], *, max_connections: int = MAX_CONNECTIONS, connect_timeout: float = CONNECT_S
    ) -> None:
        self.backends = backends
        self._next = itertools.cycle(range(len(backends)))
        self.landed = [0] * len(backends)
        limits = httpx2.Limits(max_connections=max_connections, max_keepalive_connections=KEEP_ALIVE)
        timeout = httpx2.Timeout(120, connect=connect_timeout)
        self._http = httpx2.AsyncClient(limits=limits, timeout=timeout, trust_env=False)

    async def __call__(self, scope: object, receive: object, send: object) -> None:
        request = Request(scope, receive)  # type: ignore[arg-type]
        response = await self._forward(request)
        await response(scope, receive, send)  # type: ignore[arg-type]

    async def _forward(self, request: Request) -> Response:
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        for _ in self.backends:
            index = next(self._next)
            url = self.backends[index] + request.url.path + (f"?{request.url.query}" if request.url.query else "")
            try:
                upstream = await self._http.send(
                    self._http.build_request(request.method, url, headers=headers, content=body), stream=True
                )
            except httpx2.ConnectError:
                continue  # that replica is gone: the next one answers
            except httpx2.TransportError as exc:  # there, but not answering in time: said, not a bare 500
                return Response(f"{type(exc).__name__} from {self.backends[index]}", status_code=502)
            self.landed[index] += 1

            async def relay(upstream: httpx2.Response = upstream) -> AsyncIterator[bytes]:
                try:
                    async for chunk in upstream.aiter_raw():
                        yield chunk
                finally:
                    await upstream.aclose()

            out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
            return StreamingResponse(relay(), status_code=upstream.status_code, headers=out_headers)
        return Response("no replica answers", status_code=502)


@contextmanager
def round_robin(backends: list[str]) -> Iterator[tuple[str, RoundRobin]]:
    """The balancer on a free loopback port, in a thread; yields its origin and the app."""
    app = RoundRobin(backends)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the balancer did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(10)


def main(argv: list[str] | None = None) -> None:
    """`python -m rigs.round_robin PORT BACKEND... [--max-connections N] [--connect-timeout S]`: in the foreground."""
    parser = argparse.ArgumentParser(prog="python -m rigs.round_robin")
    parser.add_argument("port", type=int)
    parser.add_argument("backends", nargs="+", metavar="BACKEND")
    parser.add_argument("--max-connections", type=int, default=MAX_CONNECTIONS)
    parser.add_argument("--connect-timeout", type=float, default=CONNECT_S, metavar="SECONDS")
    args = parser.parse_args(argv)
    app = RoundRobin(args.backends, max_connections=args.max_connections, connect_timeout=args.connect_timeout)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False, lifespan="off")


if __name__ == "__main__":
    main()
