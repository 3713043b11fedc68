"""The `glm-mcp` command as a newcomer meets it: what each subcommand's `--help` says, and a port in use."""

from __future__ import annotations

import socket
import subprocess

import pytest

from glm_mcp.cli import main
from tests.conftest import GENERAL_KEY
from tests.processes import COMMAND, free_port, server_env


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
