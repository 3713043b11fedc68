"""The `glm-mcp` command: serve MCP (stdio or Streamable HTTP), run the demo, or run the emulator.

Over stdio, stdout belongs to JSON-RPC: everything this program says goes to stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from glm_mcp import __version__

if TYPE_CHECKING:
    from glm_mcp.config import Settings

DEFAULT_HTTP_PORT = 8000
DEFAULT_EMULATOR_PORT = 8765


SUBCOMMANDS = (
    (
        "serve",
        "serve MCP (the default command)",
        "Serve the GLM tools to an MCP client: over stdio (the default, what desktop and IDE clients start) or "
        "over Streamable HTTP at /mcp with --transport http. Needs a GLM API key in GLM_API_KEY.",
    ),
    (
        "demo",
        "serve MCP answered by a built-in GLM emulator: no key, no network",
        "Serve the same tools as `serve`, answered by the bundled GLM emulator instead of the platform: try the "
        "server and your client's set-up without a key or a network. Answers are made up by the emulator and say so.",
    ),
    (
        "doctor",
        "check the configuration and the connection to the GLM API, and say what to fix",
        "Check the set-up as the server will see it: which variable the key comes from, the endpoint, the proxy, "
        "then a free call to the platform and a 1-token chat. Each problem comes with its fix; the exit status is "
        "0 only when the server can work. Run it with the variables your client's config passes.",
    ),
    (
        "emulator",
        "run the local GLM API emulator on its own",
        "Run the local GLM API emulator on its own, for trying any GLM client offline: chat (JSON and SSE), web "
        "search, async jobs, /models and the platform's error codes, with deterministic answers.",
    ),
)
"""Each subcommand: its name, its line in `glm-mcp --help`, and what its own `--help` says it is for."""


def main(argv: Sequence[str] | None = None) -> int:
    """The `glm-mcp` command: parse the arguments and run the subcommand; its exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "emulator":
            return _run_emulator(args)
        if args.command == "doctor":
            from glm_mcp.doctor import run_doctor

            return run_doctor(chat=args.chat)
        return _serve(args, demo=args.command == "demo")
    except KeyboardInterrupt:
        return 130


def _serve(args: argparse.Namespace, *, demo: bool) -> int:
    from glm_mcp.config import ConfigError, Settings

    try:
        settings = Settings.from_env()
        if args.toolsets is not None:  # the flag wins over GLM_MCP_TOOLSETS, checked as the variable is
            settings = Settings.from_env({**os.environ, "GLM_MCP_TOOLSETS": args.toolsets})
        if args.transport == "http":
            settings = _http_settings(args, settings)
    except ConfigError as exc:
        print(f"glm-mcp: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.transport == "http" and (busy := _bind_error(args.host, args.port)) is not None:
        print(f"glm-mcp: {busy}", file=sys.stderr)
        return 1
    _configure_logging(settings.log_level)

    if demo:
        from glm_mcp.demo import demo_settings, start_demo_emulator

        emulator = start_demo_emulator()
        settings = demo_settings(settings, emulator)
        print(f"glm-mcp demo: answering from the GLM emulator at {emulator.base_url} (no key needed)", file=sys.stderr)

    from glm_mcp.app import create_server

    server = create_server(settings)
    if args.transport == "stdio":
        import anyio

        from glm_mcp.server.stdio import serve_stdio

        anyio.run(serve_stdio, server)
        return 0
    from glm_mcp.server.http import MCP_PATH, run_http

    mode = "stateless" if settings.stateless else "sessionful"
    print(
        f"glm-mcp: serving Streamable HTTP at http://{_host_port(args.host, args.port)}{MCP_PATH} ({mode}, "
        f"{'bearer token required' if settings.http_token else 'no token'})",
        file=sys.stderr,
    )
    run_http(server, settings, host=args.host, port=args.port)
    return 0


def _http_settings(args: argparse.Namespace, settings: Settings) -> Settings:
    """`settings` with the HTTP flags applied; refuses an exposed address without a token."""
    from glm_mcp.server.http import check_exposure

    stateless = settings.stateless if args.stateless is None else args.stateless
    settings = settings.replace(stateless=stateless, allow_insecure=settings.allow_insecure or args.allow_insecure)
    check_exposure(args.host, settings)
    return settings


def _run_emulator(args: argparse.Namespace) -> int:
    import anyio

    from glm_mcp.emulator import EmulatorConfig, serve

    host, port = args.host, args.port
    config = EmulatorConfig(
        latency=args.latency,
        chunk_delay=args.chunk_delay,
        async_delay=args.async_delay,
        max_in_flight=args.max_in_flight,
    )
    print(
        f"glm-mcp emulator: GLM API at http://{_host_port(host, port)}/api/paas/v4 "
        f"(key {config.api_keys[0]}); coding plan at /api/coding/paas/v4 (key {config.coding_keys[0]})",
        file=sys.stderr,
    )
    anyio.run(serve, config, host, port)
    return 0


def _bind_error(host: str, port: int) -> str | None:
    """Why `host:port` cannot be served, checked before saying it is: a port in use gets one line and a way out."""
    import errno
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the HTTP server binds it
            probe.bind(address)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return (
                f"port {port} on {host} is already in use (another glm-mcp, or another program, listens there): "
                f"stop it, or choose a free port with --port {port + 1 if port < 65535 else 8001}."
            )
        return f"cannot listen on {_host_port(host, port)}: {exc.strerror or exc}; check --host and --port."
    return None


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Request lines of the HTTP stacks say nothing a user needs at INFO.
    for noisy in ("httpx2", "httpcore2", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    # sse_starlette, which writes the SDK's Streamable HTTP event streams, logs every event it sends at DEBUG
    # ("chunk: b'event: message…'"): every answer and progress message, which the log must never hold.
    # Its other DEBUG lines (pings, a disconnect) are no loss; the access log and ours say as much.
    logging.getLogger("sse_starlette").setLevel(max(logging.INFO, logging.getLogger().level))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glm-mcp",
        description="MCP server for the GLM models of the Zhipu / Z.ai open platform. "
        "Configuration comes from environment variables (see the README).",
    )
    parser.add_argument("--version", action="version", version=f"glm-mcp {__version__}")
    _add_transport_options(parser)
    parser.set_defaults(command=None)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, summary, description in SUBCOMMANDS:
        sub = commands.add_parser(name, help=summary, description=description)
        if name in ("serve", "demo"):
            _add_transport_options(sub)
    doctor, emulator = commands.choices["doctor"], commands.choices["emulator"]
    doctor.add_argument(
        "--no-chat",
        dest="chat",
        action="store_false",
        help="skip the 1-token chat that checks the default model and the balance (it costs a few tokens)",
    )
    emulator.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    emulator.add_argument(
        "--port", type=int, default=DEFAULT_EMULATOR_PORT, help=f"port (default {DEFAULT_EMULATOR_PORT})"
    )
    emulator.add_argument("--latency", type=float, default=0.0, help="seconds before each answer or first chunk")
    emulator.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between streamed chunks")
    emulator.add_argument(
        "--async-delay", type=float, default=0.3, help="seconds an async job stays PROCESSING (default 0.3)"
    )
    emulator.add_argument(
        "--max-in-flight", type=int, default=None, help="answer 1302 (concurrency too high) past this many requests"
    )
    return parser


def _add_transport_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--transport",
        choices=("stdio", "http"),
        default=argparse.SUPPRESS,
        help="stdio (default) for desktop and IDE clients, http for Streamable HTTP at /mcp",
    )
    parser.add_argument("--host", default=argparse.SUPPRESS, help="HTTP address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=argparse.SUPPRESS, help=f"HTTP port (default {DEFAULT_HTTP_PORT})")
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument(
        "--stateless",
        dest="stateless",
        action="store_const",
        const=True,
        default=argparse.SUPPRESS,
        help="HTTP: every request stands alone, replicas need no sticky sessions (default; GLM_MCP_STATELESS)",
    )
    modes.add_argument(
        "--sessionful",
        dest="stateless",
        action="store_const",
        const=False,
        default=argparse.SUPPRESS,
        help="HTTP: keep an MCP session per client in this process",
    )
    parser.add_argument(
        "--allow-insecure",
        action="store_true",
        default=argparse.SUPPRESS,
        help="HTTP: allow a non-loopback --host without GLM_MCP_HTTP_TOKEN (GLM_MCP_ALLOW_INSECURE)",
    )
    parser.add_argument(
        "--toolsets",
        default=argparse.SUPPRESS,
        help="the toolsets to offer, comma-separated or all: core, search, images, video, models, usage "
        "(default core,search; GLM_MCP_TOOLSETS)",
    )
    parser.set_defaults(
        transport="stdio",
        host="127.0.0.1",
        port=DEFAULT_HTTP_PORT,
        stateless=None,
        allow_insecure=False,
        toolsets=None,
    )


if __name__ == "__main__":
    sys.exit(main())
