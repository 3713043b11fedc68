"""The `glm-mcp` command: serve MCP (stdio or Streamable HTTP), run the demo, or run the emulator.

Over stdio, stdout belongs to JSON-RPC: everything this program says goes to stderr.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import sys
from collections.abc import Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from glm_mcp import __version__

if TYPE_CHECKING:
    import argparse

    from glm_mcp.config import Settings

    Arguments = argparse.Namespace | SimpleNamespace

DEFAULT_HTTP_HOST = "127.0.0.1"
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


SETTINGS_URL = "https://github.com/glm-mcp/glm-mcp#configuration"
"""Where every setting is described: the README's Configuration section, for those without a checkout."""

EXAMPLES = f"""\
examples:
  glm-mcp demo --transport http   try it without a key: MCP at http://127.0.0.1:8000/mcp, answered
                                  by the built-in emulator; it prints how to connect a client
  glm-mcp doctor                  check the key, the endpoint and the proxy, and say what to fix
  GLM_API_KEY=<id>.<secret> glm-mcp
                                  serve over stdio: what an MCP client's config starts
  glm-mcp --transport http --port 8000 --toolsets all
                                  serve Streamable HTTP at http://127.0.0.1:8000/mcp, every tool

settings:
  environment variables: GLM_API_KEY (the key), GLM_REGION (international or mainland), GLM_PLAN
  (general or coding), GLM_MODEL, GLM_MCP_TOOLSETS, GLM_MCP_HTTP_TOKEN and more, each described at
  {SETTINGS_URL}
"""
"""The end of `glm-mcp --help`: what to type first, and where the settings are documented."""


NOT_GIVEN: dict[str, Any] = {
    "command": None,
    "transport": "stdio",
    "host": None,
    "port": None,
    "stateless": None,
    "allow_insecure": None,
    "toolsets": None,
}
"""What the arguments are when none is given (the parser's defaults): None is "not given", so that over stdio a
given HTTP flag is said to be unused."""


def main(argv: Sequence[str] | None = None) -> int:
    """The `glm-mcp` command: parse the arguments and run the subcommand; its exit status."""
    args = _arguments(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == "emulator":
            return _run_emulator(args)
        if args.command == "doctor":
            from glm_mcp.doctor import run_doctor

            return run_doctor(chat=args.chat)
        return _serve(args, demo=args.command == "demo")
    except KeyboardInterrupt:
        return 130


def _arguments(argv: Sequence[str]) -> Arguments:
    """`argv` parsed. Without arguments (how every MCP client's config starts the stdio server) they are the
    defaults, without building the parser: argparse and the parser cost each such start ~3 ms for nothing."""
    return _parser().parse_args(argv) if argv else SimpleNamespace(**NOT_GIVEN)


def _serve(args: Arguments, *, demo: bool) -> int:
    from glm_mcp.config import ConfigError, Settings

    host = DEFAULT_HTTP_HOST if args.host is None else args.host
    port = DEFAULT_HTTP_PORT if args.port is None else args.port
    try:
        # The flag wins over GLM_MCP_TOOLSETS and is checked as the variable is; its mistakes name the flag.
        flags = {"GLM_MCP_TOOLSETS": args.toolsets} if args.toolsets is not None else {}
        settings = Settings.from_env({**os.environ, **flags})
        if args.transport == "http":
            settings = _http_settings(args, settings, host)
    except ConfigError as exc:
        problem = f"--toolsets: {exc.problem}" if exc.variable in flags else str(exc)
        print(f"glm-mcp: configuration error: {problem}", file=sys.stderr)
        return 2
    if args.transport == "http" and (busy := _bind_error(host, port)) is not None:
        print(f"glm-mcp: {busy}", file=sys.stderr)
        return 1
    if args.transport == "stdio":
        if unused := _http_only_flags(args):
            print(
                f"glm-mcp: {' '.join(unused)} not used: {'it applies' if len(unused) == 1 else 'they apply'} to "
                "--transport http, and this serves stdio; add --transport http to serve over HTTP.",
                file=sys.stderr,
            )
        if sys.stdin.isatty():
            print(_STDIO_ON_A_TERMINAL.format(program=_program()), file=sys.stderr)
    _configure_logging(settings.server.log_level)
    if not demo:
        return _run(settings, args.transport, host, port, demo=False)

    from glm_mcp.demo import running_demo

    with running_demo(settings) as (settings, emulator):
        print(f"glm-mcp demo: answering from the GLM emulator at {emulator.base_url} (no key needed)", file=sys.stderr)
        return _run(settings, args.transport, host, port, demo=True)


_STDIO_ON_A_TERMINAL = (
    "glm-mcp: this is an MCP server: it speaks JSON-RPC on stdin and stdout to an MCP client (Claude Code, Claude "
    "Desktop, Cursor, VS Code), which starts it itself; typing here does nothing useful. To try it with a client "
    "of yours now, without a key: {program} demo --transport http. Ctrl-C stops this one."
)
"""Said when stdin is a terminal: a person started the stdio server by hand, and it would wait in silence."""


def _program() -> str:
    """How to run this program again from a shell: its name when PATH finds this very program by it, else its
    full path (`scripts/serve` runs the checkout's .venv/bin/glm-mcp, which PATH does not hold)."""
    import shutil
    from pathlib import Path

    invoked = Path(sys.argv[0])
    if invoked.name not in ("glm-mcp", "glm-mcp-server") or not invoked.is_file():
        return "glm-mcp"  # python -m glm_mcp
    found = shutil.which(invoked.name)
    return invoked.name if found and Path(found).resolve() == invoked.resolve() else str(invoked.resolve())


def _run(settings: Settings, transport: str, host: str, port: int, *, demo: bool) -> int:
    """Serve `settings` on `transport` until stopped."""
    from glm_mcp.app import create_server

    server = create_server(settings, over_http=transport == "http")
    if transport == "stdio":
        import anyio

        from glm_mcp.server.stdio import serve_stdio

        anyio.run(serve_stdio, server)
        return 0
    from glm_mcp.server.http import MCP_PATH, run_http

    mode = "stateless" if settings.http.stateless else "sessionful"
    print(
        f"glm-mcp: serving Streamable HTTP at http://{_host_port(host, port)}{MCP_PATH} ({mode}, "
        f"{'bearer token required' if settings.http.token else 'no token'})",
        file=sys.stderr,
    )
    print(_next_step(f"http://{_host_port(_client_host(host), port)}{MCP_PATH}", settings, demo=demo), file=sys.stderr)
    if demo:  # uvicorn ends on SIGTERM by raising it again: as an exception, the demo's clean-up still runs
        signal.signal(signal.SIGTERM, _exit_on_signal)
    run_http(server, settings, host=host, port=port)
    return 0


def _next_step(url: str, settings: Settings, *, demo: bool) -> str:
    """What to do once the HTTP server is up: the exact commands that point Claude Code and the MCP Inspector at
    `url`, and how to stop it. A token is named by where it is kept, never printed."""
    token = ""
    if settings.http.token:
        file = settings.http.token_file
        kept = f"$(cat {shlex.quote(str(file))})" if file else "$GLM_MCP_HTTP_TOKEN"
        token = f"Authorization: Bearer {kept}"
    name = "glm-demo" if demo else "glm"
    claude = ["claude", "mcp", "add", "--transport", "http", name, url, *(["--header", token] if token else [])]
    chat = ("--method", "tools/call", "--tool-name", "chat", "--tool-arg", "prompt=Hello")
    inspector = [
        *("npx", "-y", "@modelcontextprotocol/inspector", "--cli", url),
        *(["--header", token] if token else []),
        *(chat if "core" in settings.server.toolsets else ("--method", "tools/list")),  # chat is a core tool
    ]
    stop = "Ctrl-C stops it" + (" and removes the demo's temporary files." if demo else ".")
    return "\n".join(
        (
            f"Next, point an MCP client at {url}:",
            f"  Claude Code:    {_shell(claude)}",
            f"                  (then `claude mcp list` shows it connected; `claude mcp remove {name}` removes it)",
            f"  MCP Inspector:  {_shell(inspector)}",
            "                  (the Inspector's command line; it needs Node.js 22.19 or later)",
            stop,
        )
    )


def _shell(words: list[str]) -> str:
    """`words` as one shell command line; a token's `$VARIABLE` or `$(cat FILE)` is left for the shell to expand."""
    return " ".join(f'"{word}"' if word.startswith("Authorization:") else shlex.quote(word) for word in words)


def _client_host(host: str) -> str:
    """The address a client on this machine reaches `host` by: loopback for an address that means all of them."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def _exit_on_signal(signum: int, frame: object) -> None:
    """Exit as a process that a signal ended would (128 + its number), unwinding the stack on the way."""
    raise SystemExit(128 + signum)


def _http_only_flags(args: Arguments) -> list[str]:
    """The flags given that only serving over HTTP uses, as the user wrote them."""
    given = [
        (args.host is not None, f"--host {args.host}"),
        (args.port is not None, f"--port {args.port}"),
        (args.stateless is True, "--stateless"),
        (args.stateless is False, "--sessionful"),
        (bool(args.allow_insecure), "--allow-insecure"),
    ]
    return [flag for present, flag in given if present]


def _http_settings(args: Arguments, settings: Settings, host: str) -> Settings:
    """`settings` with the HTTP flags applied; refuses an exposed address without a token."""
    from glm_mcp.server.http import check_exposure

    stateless = settings.http.stateless if args.stateless is None else args.stateless
    allow_insecure = settings.http.allow_insecure or bool(args.allow_insecure)
    settings = settings.replace(http={"stateless": stateless, "allow_insecure": allow_insecure})
    check_exposure(host, settings)
    return settings


def _run_emulator(args: Arguments) -> int:
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
    import argparse

    parser = argparse.ArgumentParser(
        prog="glm-mcp",
        description="MCP server for the GLM models of the Zhipu / Z.ai open platform. "
        "Configuration comes from environment variables (see below).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"glm-mcp {__version__}")
    _add_transport_options(parser)
    # Set once, on the command itself: a subcommand's own defaults would undo the flags given before its name.
    parser.set_defaults(**NOT_GIVEN)
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
    import argparse

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


if __name__ == "__main__":
    sys.exit(main())
