"""A recording shim in front of a stdio MCP server, to see what a client does to the server it starts.

`python tests/mcp_shim.py LOG -- COMMAND…` starts COMMAND (in a session of its own, so that only what
the shim passes on reaches it), passes stdin, stdout and every SIGINT, SIGTERM and SIGHUP through to it,
and appends each event to LOG as one JSON line: `{"t": <monotonic s>, "event": …}` with events
`child` (pid), `in` / `out` (a JSON-RPC line from the client / from the server), `in_closed`
(the client closed stdin), `signal` (name), `exit` (the server's exit code, negative for a signal).
The shim exits with the server's code once it has exited. A SIGKILL cannot be caught, so passes
through otherwise: the server is made to get one too when the shim dies (Linux's parent-death
signal), as it would have without the shim in between.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Any

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PR_SET_PDEATHSIG = 1


class Log:
    def __init__(self, path: str) -> None:
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (open for the process's life)
        self._lock = threading.Lock()

    def write(self, event: str, **fields: Any) -> None:
        line = json.dumps({"t": time.monotonic(), "event": event, **fields})
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()


def _pump(source: IO[bytes], sink: IO[bytes], log: Log, event: str, closed: str | None) -> None:
    """Copy lines from `source` to `sink`, logging each; on EOF log `closed` and close `sink`."""
    for line in iter(source.readline, b""):
        log.write(event, line=line.decode("utf-8", "replace").rstrip("\n"))
        try:
            sink.write(line)
            sink.flush()
        except (BrokenPipeError, ValueError):
            break
    if closed:
        log.write(closed)
    with contextlib.suppress(BrokenPipeError, OSError):
        sink.close()


def _die_with_parent() -> None:
    """In the server, before it starts: a SIGKILL when the shim dies, whatever kills it."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def main(argv: list[str]) -> int:
    log_path, separator, *command = argv
    if separator != "--" or not command:
        raise SystemExit("usage: mcp_shim.py LOG -- COMMAND...")
    log = Log(log_path)
    child = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True, preexec_fn=_die_with_parent
    )
    assert child.stdin is not None and child.stdout is not None
    log.write("child", pid=child.pid)

    def forward(signum: int, frame: object) -> None:
        log.write("signal", name=signal.Signals(signum).name)
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signum)

    for signum in FORWARDED:
        signal.signal(signum, forward)
    threading.Thread(target=_pump, args=(sys.stdin.buffer, child.stdin, log, "in", "in_closed"), daemon=True).start()
    out = threading.Thread(target=_pump, args=(child.stdout, sys.stdout.buffer, log, "out", None), daemon=True)
    out.start()
    code = child.wait()
    out.join(5)
    log.write("exit", code=code)
    return code


if __name__ == "__main__":
    status = main(sys.argv[1:])
    # At once: a normal interpreter exit could wait on the daemon thread blocked reading stdin, and
    # the client would count that time against the server.
    os._exit(status if status >= 0 else 128 - status)
