"""httpcore2 2.16: a burst of N concurrent requests on one AsyncConnectionPool costs O(N²) CPU.

Minimal reproduction, meant to be reported upstream. Run it with any Python that has httpcore2:

    python docs/httpcore2-pool-repro.py            # N = 16, 64, 256, 1000
    python docs/httpcore2-pool-repro.py 64 1000    # chosen N

What it shows. `AsyncConnectionPool._assign_requests_to_connections` runs twice per request (when
the request joins the queue and when its response closes, `PoolByteStream.aclose`), and each run
walks every pooled connection, calling `has_expired()` on each idle one that is not reserved.
`has_expired()` probes the socket (`is_readable`: a `select`/`poll` system call). With N idle
connections kept alive (`max_keepalive_connections` >= N), each of the two passes finds N/2 idle
connections on average (all idle as a burst starts, none at its peak, all again as it ends): N
probes per request, N² per burst, so the CPU per request grows linearly with the pool size.
Bounding `max_keepalive_connections` to K bounds the probes per pass to K.

The server is a 20-line asyncio HTTP/1.1 server in a child process, answering after 50 ms so that
all N requests of a burst are in flight together; the figure is the CPU time (user + system) of
the client process only, per request, over 3 bursts after one warm-up burst.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time

import httpcore2

BODY = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
BURSTS = 3


async def _serve(port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):  # GET requests: no body to read
                await asyncio.sleep(0.05)
                writer.write(BODY)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


probes = 0


def _count_probes() -> None:
    """Count `has_expired()` calls (each one on an idle connection is a socket probe)."""
    from httpcore2._async.http11 import AsyncHTTP11Connection

    original = AsyncHTTP11Connection.has_expired

    def counted(self: AsyncHTTP11Connection) -> bool:
        global probes
        probes += 1
        return original(self)

    AsyncHTTP11Connection.has_expired = counted  # type: ignore[method-assign]


async def _burst(pool: httpcore2.AsyncConnectionPool, url: str, n: int) -> None:
    async def one() -> None:
        response = await pool.request("GET", url)
        assert response.status == 200

    await asyncio.gather(*(one() for _ in range(n)))


async def measure(url: str, n: int, keepalive: int | None) -> tuple[float, float]:
    """(CPU ms per request, has_expired calls per request) for bursts of `n` on a pool keeping `keepalive`."""
    global probes
    async with httpcore2.AsyncConnectionPool(max_connections=n, max_keepalive_connections=keepalive) as pool:
        await _burst(pool, url, n)  # warm-up: the pool now holds its connections
        probes = 0
        before = time.process_time()
        for _ in range(BURSTS):
            await _burst(pool, url, n)
        spent = time.process_time() - before
    return spent * 1000 / (BURSTS * n), probes / (BURSTS * n)


def main(sizes: list[int]) -> None:
    port = _free_port()
    child = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        _count_probes()
        url = f"http://127.0.0.1:{port}/"
        print(f"httpcore2 {httpcore2.__version__}, Python {sys.version.split()[0]}, load {os.getloadavg()[0]:.2f}")
        print(f"{'N':>6} {'keep-alive':>11} {'CPU ms/request':>15} {'has_expired/request':>20}")
        for n in sizes:
            for keepalive in (None, 32):
                cpu, per_request = asyncio.run(measure(url, n, keepalive))
                shown = "N" if keepalive is None else str(keepalive)
                print(f"{n:>6} {shown:>11} {cpu:>15.3f} {per_request:>20.1f}", flush=True)
    finally:
        child.terminate()
        child.wait()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        asyncio.run(_serve(int(sys.argv[2])))
    else:
        main([int(a) for a in sys.argv[1:]] or [16, 64, 256, 1000])
