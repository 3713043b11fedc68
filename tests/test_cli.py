"""The `glm-mcp` command as a newcomer meets it: what `--help` says, what a terminal is told, the next step the
demo prints (each printed command run as printed), flags that do nothing, a port in use, and a demo that cleans up."""

from __future__ import annotations

import json
import os
import pty
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import httpx2
import pytest
from mcp import Client, StdioServerParameters

from glm_mcp.cli import NOT_GIVEN, SETTINGS_URL, _arguments, _parser, main
from glm_mcp.emulator import Emulator
from rigs.node_tools import INSPECTOR, bin_path, node_env, run_node_tool
from tests.claude_headless import claude_commands
from tests.conftest import GENERAL_KEY
from tests.processes import COMMAND, free_port, server_env

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("command", "purpose"),
    [
        ("serve", "Serve the GLM tools to an MCP client"),
        ("demo", "without a key or a network"),
        ("doctor", "Each problem comes with its fix"),
        ("emulator", "for trying any GLM client offline"),
    ],
)
def test_each_subcommands_help_says_what_it_is_for(
    command: str, purpose: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    usage, _, rest = capsys.readouterr().out.partition("\n\n")
    assert usage.startswith(f"usage: glm-mcp {command}")
    about = rest.split("\n\n")[0]  # the paragraph between the usage and the options
    assert not about.startswith("options:"), f"`glm-mcp {command} --help` does not say what it is for"
    assert purpose in " ".join(about.split())


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_a_busy_port_fails_in_one_line_naming_it_before_announcing_anything(command: str) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        run = subprocess.run(
            [*COMMAND, command, "--transport", "http", "--port", str(port)],
            env=server_env(GLM_API_KEY=GENERAL_KEY),
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in lines[0]
    assert f"--port {port + 1}" in lines[0]
    assert "serving" not in run.stderr and "answering" not in run.stderr and "Traceback" not in run.stderr


def test_a_malformed_database_url_stops_the_server_in_one_line_without_its_password() -> None:
    run = subprocess.run(
        COMMAND,
        env=server_env(GLM_API_KEY=GENERAL_KEY, GLM_MCP_DATABASE_URL="postgresql://glm:s3cret-pw@db:port/glm_mcp"),
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode != 0 and "Traceback" not in run.stderr, run.stderr
    assert "GLM_MCP_DATABASE_URL" in run.stderr and "s3cret-pw" not in run.stderr + run.stdout
    assert run.stdout == ""


def test_the_help_shows_examples_and_where_every_setting_is_documented() -> None:
    """`glm-mcp --help` is all a user of the released package has: what to type first, and where the settings are."""
    run = subprocess.run([*COMMAND, "--help"], env=server_env(), capture_output=True, text=True, timeout=30)
    assert run.returncode == 0
    examples = run.stdout.partition("\nexamples:")[2]
    for example in ("glm-mcp demo --transport http", "glm-mcp doctor", "GLM_API_KEY=<id>.<secret> glm-mcp"):
        assert f"\n  {example}" in examples, run.stdout
    assert SETTINGS_URL in examples and "GLM_API_KEY" in examples
    section = SETTINGS_URL.partition("#")[2]
    assert f"\n## {section.capitalize()}\n" in (ROOT / "README.md").read_text(), "the link names no README section"


def read_until(stream: IO[bytes], ending: str, timeout: float = 60) -> str:
    """What `stream` says until a line containing `ending` (a thread reads, so a silent process fails here)."""
    lines: list[str] = []
    done = threading.Event()

    def read() -> None:
        for raw in iter(stream.readline, b""):
            lines.append(raw.decode())
            if ending in lines[-1]:
                break
        done.set()

    threading.Thread(target=read, daemon=True).start()
    done.wait(timeout)
    text = "".join(lines)
    assert ending in text, f"no {ending!r} within {timeout} s in:\n{text}"
    return text


def stop(process: subprocess.Popen[bytes], signum: int = signal.SIGINT) -> int:
    process.send_signal(signum)
    try:
        return process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.parametrize("command", [[], ["demo"]])
def test_a_stdio_server_started_in_a_terminal_says_what_it_is_and_how_to_try_it(command: list[str]) -> None:
    """A person who types `glm-mcp` gets told what it waits for, on stderr: stdout stays JSON-RPC's, and empty."""
    terminal, terminal_side = pty.openpty()
    try:
        process = subprocess.Popen(
            [*COMMAND, *command],
            stdin=terminal_side,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=server_env(GLM_API_KEY=GENERAL_KEY),
        )
        os.close(terminal_side)
        assert process.stderr is not None and process.stdout is not None
        said = read_until(process.stderr, "Ctrl-C stops this one.")
        assert "this is an MCP server: it speaks JSON-RPC on stdin and stdout to an MCP client" in said
        assert "To try it with a client of yours now, without a key: glm-mcp demo --transport http." in said
        stop(process)
        assert process.stdout.read() == b""
    finally:
        os.close(terminal)


def test_in_a_terminal_the_program_is_named_as_the_shell_finds_it() -> None:
    """`scripts/serve` runs the checkout's .venv/bin/glm-mcp, which is not on PATH: the hint gives its full path."""
    program = Path(sys.executable).parent / "glm-mcp"
    for path, named in (("/usr/bin:/bin", str(program.resolve())), (f"{program.parent}:/usr/bin:/bin", "glm-mcp")):
        terminal, terminal_side = pty.openpty()
        try:
            process = subprocess.Popen(
                [str(program)],
                stdin=terminal_side,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=server_env(GLM_API_KEY=GENERAL_KEY, PATH=path),
            )
            os.close(terminal_side)
            assert process.stderr is not None
            said = read_until(process.stderr, "Ctrl-C stops this one.")
            assert f"without a key: {named} demo --transport http." in said
            stop(process)
        finally:
            os.close(terminal)


def test_a_stdio_server_started_by_a_client_says_nothing_of_terminals() -> None:
    run = subprocess.run(
        COMMAND, env=server_env(GLM_API_KEY=GENERAL_KEY), input="", capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 0 and run.stdout == ""
    assert "this is an MCP server" not in run.stderr and "not used" not in run.stderr


def test_without_arguments_the_command_is_what_its_parser_makes_of_none() -> None:
    """`glm-mcp` without arguments (every client's stdio config) skips argparse: the same arguments all the same."""
    assert vars(_arguments([])) == vars(_parser().parse_args([])) == NOT_GIVEN


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--port", "8043"], "--port 8043 not used: it applies to --transport http"),
        (["--host", "0.0.0.0", "demo", "--sessionful"], "--host 0.0.0.0 --sessionful not used: they apply to"),
    ],
)
def test_http_flags_given_to_a_stdio_server_are_said_to_be_unused(flags: list[str], said: str) -> None:
    env = server_env(GLM_API_KEY=GENERAL_KEY)
    run = subprocess.run([*COMMAND, *flags], env=env, input="", capture_output=True, text=True, timeout=30)
    assert run.returncode == 0 and run.stdout == ""
    assert said in run.stderr and "add --transport http to serve over HTTP" in run.stderr


def test_a_misspelt_toolset_in_the_flag_names_the_flag_and_in_the_variable_the_variable() -> None:
    by_flag = subprocess.run(
        [*COMMAND, "--toolsets", "core,imges"], env=server_env(), input="", capture_output=True, text=True, timeout=30
    )
    assert by_flag.returncode == 2
    assert "glm-mcp: configuration error: --toolsets: has unknown toolsets imges" in by_flag.stderr
    assert "GLM_MCP_TOOLSETS" not in by_flag.stderr
    by_variable = subprocess.run(
        COMMAND, env=server_env(GLM_MCP_TOOLSETS="core,imges"), input="", capture_output=True, text=True, timeout=30
    )
    assert by_variable.returncode == 2
    assert "glm-mcp: configuration error: GLM_MCP_TOOLSETS: has unknown toolsets imges" in by_variable.stderr


def demo_dirs(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("glm-mcp-demo-*"))


def test_the_http_demo_prints_the_next_step_and_each_printed_command_works(tmp_path: Path, claude: Path) -> None:
    """The lines the demo prints are run as printed: Claude Code adds the server and finds it connected, the
    Inspector's CLI gets a chat answered. Ctrl-C then stops the demo, which leaves no directory behind."""
    tmp, home = tmp_path / "tmp", tmp_path / "home"
    tmp.mkdir()
    home.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    demo = subprocess.Popen(
        [*COMMAND, "demo", "--transport", "http", "--port", str(port)],
        env=server_env(TMPDIR=str(tmp)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert demo.stderr is not None
        said = read_until(demo.stderr, "Ctrl-C stops it")
        wait_until_healthy(f"http://127.0.0.1:{port}")
        next_step = said[said.index("Next, point an MCP client at") :]
        assert next_step.startswith(f"Next, point an MCP client at {url}:\n"), said
        assert "not used" not in said
        claude_line, inspector_line = (
            next(line.partition(":")[2].strip() for line in next_step.splitlines() if line.startswith(f"  {tool}:"))
            for tool in ("Claude Code", "MCP Inspector")
        )
        assert claude_line == f"claude mcp add --transport http glm-demo {url}"
        shown = re.findall(r"`(claude mcp add [^`]* glm-demo [^`]*)`", (ROOT / "README.md").read_text())
        assert shown and {line.replace(":8000/", f":{port}/") for line in shown} == {claude_line}, shown
        assert "Node.js 22.19 or later" in next_step
        (data_dir,) = demo_dirs(tmp)  # the demo's job registry, while it runs

        # The Inspector line, as printed, with the pinned Inspector for `npx -y @modelcontextprotocol/inspector`.
        npx, answers_yes, package, *inspector_args = shlex.split(inspector_line)
        assert (npx, answers_yes, package) == ("npx", "-y", "@modelcontextprotocol/inspector")
        inspected = run_node_tool(INSPECTOR, "mcp-inspector", *inspector_args, env={"HOME": str(home)}, timeout=120)
        assert inspected.returncode == 0, inspected.stdout + inspected.stderr
        answer = json.loads(inspected.stdout)
        assert not answer.get("isError") and "made up by the GLM emulator" in answer["structuredContent"]["model"]

        # The Claude Code line, as printed, in a home of its own: the user's configuration is never touched.
        program, *claude_args = shlex.split(claude_line)
        assert program == "claude"
        ran = claude_commands(claude, home, claude_args, ["mcp", "list"])
        listed = next((line for line in ran.stdout.splitlines() if line.startswith("glm-demo:")), "")
        assert url in listed and "Connected" in listed, ran.stdout

        assert stop(demo) == 130
        assert data_dir.exists() is False and demo_dirs(tmp) == []
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()


TOKEN = "first-minutes-token-0123456789abcdef"


@pytest.mark.parametrize("kept_in", ["variable", "file"])
def test_a_servers_next_step_names_its_token_by_where_it_is_kept_and_the_shell_fills_it_in(
    tmp_path: Path, emulator: Emulator, kept_in: str
) -> None:
    """The token is never printed: the line says `$GLM_MCP_HTTP_TOKEN` (or reads the token file), and that line,
    run by a shell that has the variable, reaches the server."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    kept = {"GLM_MCP_HTTP_TOKEN": TOKEN} if kept_in == "variable" else {"GLM_MCP_HTTP_TOKEN_FILE": str(token_file)}
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    server = subprocess.Popen(
        [*COMMAND, "--transport", "http", "--port", str(port)],
        env=server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, **kept),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert server.stderr is not None
        said = read_until(server.stderr, "Ctrl-C stops it.")
        wait_until_healthy(f"http://127.0.0.1:{port}")
        assert TOKEN not in said and GENERAL_KEY not in said
        header = "$GLM_MCP_HTTP_TOKEN" if kept_in == "variable" else f"$(cat {token_file})"
        assert f'claude mcp add --transport http glm {url} --header "Authorization: Bearer {header}"' in said
        inspector_line = next(line for line in said.splitlines() if line.startswith("  MCP Inspector:"))
        command = inspector_line.partition(":")[2].strip()
        assert command.startswith("npx -y @modelcontextprotocol/inspector --cli ")
        pinned = shlex.quote(str(bin_path(INSPECTOR, "mcp-inspector")))
        inspected = subprocess.run(
            ["bash", "-c", command.replace("npx -y @modelcontextprotocol/inspector", pinned, 1)],
            env=node_env({"HOME": str(tmp_path), "GLM_MCP_HTTP_TOKEN": TOKEN}),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert inspected.returncode == 0, inspected.stdout + inspected.stderr
        assert json.loads(inspected.stdout)["isError"] is False
    finally:
        stop(server)


def test_without_the_core_toolset_the_printed_inspector_line_lists_the_tools_instead_of_calling_chat() -> None:
    port = free_port()
    demo = subprocess.Popen(
        [*COMMAND, "demo", "--transport", "http", "--port", str(port), "--toolsets", "search"],
        env=server_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert demo.stderr is not None
        said = read_until(demo.stderr, "Ctrl-C stops it")
        inspector_line = next(line for line in said.splitlines() if line.startswith("  MCP Inspector:"))
        assert inspector_line.endswith(f"--cli http://127.0.0.1:{port}/mcp --method tools/list"), inspector_line
    finally:
        stop(demo)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_http_demo_removes_its_directory_when_stopped_by_either_signal(tmp_path: Path, signum: int) -> None:
    port = free_port()
    demo = subprocess.Popen(
        [*COMMAND, "demo", "--transport", "http", "--port", str(port)],
        env=server_env(TMPDIR=str(tmp_path)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}")
        assert len(demo_dirs(tmp_path)) == 1
        assert stop(demo, signum) == 128 + signum
        assert demo_dirs(tmp_path) == []
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()


@pytest.mark.anyio
async def test_the_stdio_demo_removes_its_directory_when_its_client_leaves(tmp_path: Path) -> None:
    server = StdioServerParameters(
        command=COMMAND[0], args=[*COMMAND[1:], "demo"], env=server_env(TMPDIR=str(tmp_path))
    )
    async with Client(server, mode="legacy") as client:
        answer = await client.call_tool("chat", {"prompt": "Hello, demo"})
        assert not answer.is_error
        assert len(demo_dirs(tmp_path)) == 1
    assert demo_dirs(tmp_path) == []


def wait_until_healthy(origin: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx2.get(origin + "/healthz", timeout=1).status_code == 200:
                return
        except httpx2.HTTPError:
            pass
        assert time.monotonic() < deadline, "the demo did not come up"
        time.sleep(0.1)
