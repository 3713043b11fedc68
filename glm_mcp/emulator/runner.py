"""Running the emulator: in a background thread for tests and demos, or in the foreground for the CLI."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette

from .app import create_app
from .config import CODING_PREFIX, GENERAL_PREFIX, EmulatorConfig
from .connection import ClosingH11Protocol
from .state import EmulatorState

GRACEFUL_SHUTDOWN_SECONDS = 1
"""Open streams get this long to finish when the server stops; then they are cancelled."""
START_TIMEOUT_SECONDS = 10.0
FOREGROUND_MAX_EXCHANGES = 1000
"""A long-running emulator keeps only this many recorded exchanges."""

_STDERR_LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}},
    "loggers": {"uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False}},
}


def _server(app: Starlette, **options: Any) -> uvicorn.Server:
    """A uvicorn server tuned for many concurrent connections and a quick stop, whose connections
    the app can close without an answer (the ``drop`` and ``stream-cut`` faults)."""
    return uvicorn.Server(
        uvicorn.Config(
            app,
            http=ClosingH11Protocol,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            **options,
        )
    )


class Emulator:
    """Runs the emulator app with uvicorn on its own event loop in a daemon thread.

    ``port=0`` picks a free port; the socket is bound before the thread starts, so the real port
    is known as soon as ``start()`` returns. ``config`` is live: changing a field affects the
    next requests. ``state`` records every API exchange; ``inject`` queues faults.
    """

    def __init__(self, config: EmulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or EmulatorConfig()
        self.state = EmulatorState()
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.origin + GENERAL_PREFIX

    @property
    def coding_base_url(self) -> str:
        return self.origin + CODING_PREFIX

    def inject(self, *faults: str, path: str | None = None) -> None:
        """Make the next API requests fail, one fault each, in order (see docs/emulator.md).

        ``path`` limits them to one route as seen from the base URL, e.g. ``/chat/completions``
        or ``/async/chat/completions``; None: any API request. Raises ValueError and queues
        nothing when a fault is malformed.
        """
        self.state.inject(faults, path)

    def start(self) -> Emulator:
        """Start serving; returns once the socket is listening."""
        if self._thread is not None:
            raise RuntimeError("the emulator is already running")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio only turns Nagle off (TCP_NODELAY) on sockets that say
        # so, and with Nagle on every small response waits ~40 ms for a delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        server = _server(create_app(self.config, self.state), log_config=None, log_level="warning")
        thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])), name=f"glm-emulator-{self.port}", daemon=True
        )
        self._server, self._thread, self._socket = server, thread, sock
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the emulator could not start on {self.origin}")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving; open streams are cut after a short grace period (about a second)."""
        if self._server is None or self._thread is None or self._socket is None:
            return
        self._server.should_exit = True
        self._thread.join()
        self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


async def serve(config: EmulatorConfig, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve in the foreground until interrupted (Ctrl+C); uvicorn logs to stderr only, stdout stays clean."""
    server = _server(
        create_app(config, EmulatorState(max_exchanges=FOREGROUND_MAX_EXCHANGES)),
        host=host,
        port=port,
        log_config=_STDERR_LOGGING,
        log_level="info",
    )
    await server.serve()
