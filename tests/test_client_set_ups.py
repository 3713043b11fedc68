"""Every client set-up the README and the docs pages show, as the client itself takes it.

Claude Code's own CLI (the pinned npm package, tests/claude_headless.py) runs each `claude mcp add` line of the
README, of docs/*.md (Troubleshooting's Windows line) and of manifests/claude-code/add.sh as written, through bash,
with only the placeholders filled in (the key, the checkout's path, the port; the token is in the shell's environment,
as the line expects): Claude Code must take the line and store the server the line means, and `claude mcp list` must
then show it connected, except for a line that starts the package from PyPI (the after-release line, the Windows
`cmd /c uvx` line), which is checked as stored since nothing can start it before the release. The README's
`.mcp.json` goes into a project Claude Code lists from. Each MCP Inspector line (the README's and
docs/http-deployment.md's) runs as written, `npx` and all, on Node 22, against a running `glm-mcp --transport http`.
The README's own demo line is run as the demo prints it by tests/test_cli.py.

Claude Desktop, Cursor and VS Code cannot run here: their snippets (and every file of theirs in manifests/) are
checked against the shape each client's documentation gives, written below as JSON Schemas with the page cited.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from glm_mcp.emulator import Emulator
from rigs.node_tools import INSPECTOR, node_env, node_modules
from tests.claude_headless import SERVER, claude_added_servers, claude_shell
from tests.conftest import DEFAULT_TOOLS, GENERAL_KEY
from tests.processes import http_server, server_env
from tests.test_readme import linked_snippets

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
"""The pages a reader copies set-up lines from: the front page and the reference pages it links."""
ADD_SH = ROOT / "manifests" / "claude-code" / "add.sh"
DISTRIBUTION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]

CHECKOUT = "/path/to/glm-mcp"
"""The placeholders a reader replaces: the checkout's path, the key, and where the HTTP server listens."""
KEY = "your-id.your-secret"
HTTP_URL = "http://127.0.0.1:8000/mcp"
TOKEN = "client-set-ups-token-0123456789abcdef"
"""The HTTP server's token, in the shell's GLM_MCP_HTTP_TOKEN, which the lines name."""
UNPUBLISHED = f"--from {DISTRIBUTION} "
"""The after-release lines start the package from PyPI, where it is not yet: Claude Code takes them, nothing starts."""


def code_blocks() -> list[str]:
    """The code blocks of every page, each with its backslash continuations joined, as bash joins them."""
    return [
        block.replace("\\\n", "")
        for page in PAGES
        for block in re.findall(r"^```\w*\n(.*?)^```", page.read_text(), re.M | re.S)
    ]


def commands_shown(program: str, *, inline: bool) -> list[str]:
    """The command lines of every page that start with `program`, as a reader copies them: each line of a code
    block and, if `inline`, each inline code span. A span with `…` only describes a line (the one the demo prints),
    it is no line to copy."""
    lines = [line for block in code_blocks() for line in block.splitlines()]
    if inline:
        lines += [span for page in PAGES for span in re.findall(r"`([^`\n]+)`", page.read_text())]
    return list(dict.fromkeys(line for line in lines if line.startswith(f"{program} ") and "…" not in line))


def filled(line: str, url: str) -> str:
    """`line` with its placeholders filled in as a reader fills them; nothing else changes."""
    return line.replace(CHECKOUT, str(ROOT)).replace(KEY, GENERAL_KEY).replace(HTTP_URL, url)


@pytest.fixture(scope="module")
def served(emulator_session: Emulator) -> Iterator[str]:
    """One `glm-mcp --transport http` with a token for the module, on the emulator: its /mcp URL."""
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator_session.base_url, GLM_MCP_HTTP_TOKEN=TOKEN)
    with http_server(env=env) as origin:
        yield origin + "/mcp"


# --- Claude Code ------------------------------------------------------------------------------------------------

SHOWN_CLAUDE_LINES = [line for line in commands_shown("claude mcp add", inline=True) if " glm-demo " not in line]
"""Every `claude mcp add` line the pages show (in code blocks and in the text, as Troubleshooting's Windows line),
but the demo's: tests/test_cli.py runs that one against a demo, as the demo prints it."""
ADD_SH_LINES = [line for line in ADD_SH.read_text().splitlines() if line.startswith("claude ")]
CLAUDE_LINES = list(dict.fromkeys([*SHOWN_CLAUDE_LINES, *ADD_SH_LINES]))


def test_the_pages_show_claude_code_lines_for_stdio_http_after_the_release_and_windows() -> None:
    """What the tests below run is what the pages show: were they to show none, they would run nothing. The Windows
    line lives in docs/troubleshooting.md, not in the README."""
    assert any(f"{CHECKOUT}/.venv/bin/glm-mcp" in line for line in SHOWN_CLAUDE_LINES), SHOWN_CLAUDE_LINES
    assert any("--transport http" in line for line in SHOWN_CLAUDE_LINES), SHOWN_CLAUDE_LINES
    assert any(UNPUBLISHED in line for line in SHOWN_CLAUDE_LINES), SHOWN_CLAUDE_LINES
    assert any(" -- cmd /c uvx " in line for line in SHOWN_CLAUDE_LINES), SHOWN_CLAUDE_LINES
    assert set(ADD_SH_LINES) <= set(CLAUDE_LINES) and len(ADD_SH_LINES) == 3, ADD_SH_LINES


@pytest.mark.parametrize("line", CLAUDE_LINES, ids=lambda line: line.partition(" -- ")[2] or "http")
def test_claude_code_takes_each_line_as_written_and_connects(
    line: str, claude: Path, served: str, tmp_path: Path
) -> None:
    """The line, run by bash with Claude Code on PATH, adds the server it means; `claude mcp list` then connects to it
    (but to the unpublished package, which Claude Code stores and cannot start until the release)."""
    home = tmp_path / "home"
    home.mkdir()
    typed = filled(line, served)
    added = claude_shell(claude, home, typed, GLM_MCP_HTTP_TOKEN=TOKEN)
    assert added.returncode == 0, f"{typed}\n{added.stdout}{added.stderr}"

    servers = claude_added_servers(home)
    assert list(servers) == [SERVER], servers
    if "--transport http" in line:
        expected: dict[str, Any] = {"type": "http", "url": served, "headers": {"Authorization": f"Bearer {TOKEN}"}}
    else:  # the words after `--` are the server's command line, the key its only variable
        command, *args = shlex.split(typed.partition(" -- ")[2])
        expected = {"type": "stdio", "command": command, "args": args, "env": {"GLM_API_KEY": GENERAL_KEY}}
    assert servers[SERVER] == expected

    if UNPUBLISHED in line:
        return
    listed = claude_shell(claude, home, "claude mcp list")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    status = next((shown for shown in listed.stdout.splitlines() if shown.startswith(f"{SERVER}:")), "")
    assert "✔ Connected" in status, listed.stdout


def test_claude_code_connects_to_the_readmes_mcp_json_in_a_project(claude: Path, tmp_path: Path) -> None:
    """The README's `.mcp.json`, in a project, the key in the environment Claude Code runs in. Claude Code asks once
    before it starts a project's server; the answer is recorded as the `enabledMcpjsonServers` setting
    (https://code.claude.com/docs/en/settings), written here in the user's settings as the approval would be."""
    (snippet,) = [text for path, text in linked_snippets(README) if path == "manifests/claude-code/mcp.json"]
    home, project = tmp_path / "home", tmp_path / "project"
    (home / ".claude").mkdir(parents=True)
    project.mkdir()
    (project / ".mcp.json").write_text(snippet.replace(CHECKOUT, str(ROOT)))
    (home / ".claude" / "settings.json").write_text(json.dumps({"enabledMcpjsonServers": [SERVER]}))

    listed = claude_shell(claude, home, "claude mcp list", cwd=project, GLM_API_KEY=GENERAL_KEY)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    status = next((shown for shown in listed.stdout.splitlines() if shown.startswith(f"{SERVER}:")), "")
    assert f"{ROOT}/.venv/bin/glm-mcp" in status and "✔ Connected" in status, listed.stdout
    assert "Missing environment variables" not in listed.stdout, listed.stdout


# --- the MCP Inspector ------------------------------------------------------------------------------------------

INSPECTOR_LINES = [line for line in commands_shown("npx", inline=False) if "@modelcontextprotocol/inspector" in line]


def inspector_needs() -> str:
    """The oldest Node.js the pinned Inspector runs on, from its package's `engines` ("22.19")."""
    package = node_modules(INSPECTOR) / "@modelcontextprotocol" / "inspector" / "package.json"
    needs = json.loads(package.read_text())["engines"]["node"]
    match = re.fullmatch(r">=\s*(\d+\.\d+)\.0", needs)
    assert match, needs
    return match.group(1)


def test_every_npx_line_says_yes_itself() -> None:
    """npx asks before it installs a package, and with no terminal to answer it gives up: "npx canceled due to
    missing packages and no YES option" (npm 11). A line to copy must carry `-y`."""
    lines = commands_shown("npx", inline=False)
    assert lines
    assert all(shlex.split(line)[1] in ("-y", "--yes") for line in lines), lines


@pytest.mark.parametrize("line", INSPECTOR_LINES, ids=lambda line: " ".join(shlex.split(line)[-2:]))
def test_the_inspector_line_runs_as_written_on_the_node_it_names(line: str, served: str, tmp_path: Path) -> None:
    """Run by bash on Node 22, with the token in the shell. npx runs where the pinned Inspector is installed, so it
    takes that one (as it takes a project's own) instead of the newest from the registry, and npm is kept offline:
    the test needs no network and always runs the same Inspector. Its block says which Node.js the Inspector needs."""
    needs = inspector_needs()
    block = next(block for block in code_blocks() if line in block)
    assert f"Node.js {needs} or later" in block, f"the README does not say the Inspector needs Node.js {needs}"

    env = node_env({"HOME": str(tmp_path), "GLM_MCP_HTTP_TOKEN": TOKEN, "npm_config_offline": "true"})
    inspected = subprocess.run(
        ["bash", "-c", filled(line, served)],
        env=env,
        cwd=node_modules(INSPECTOR).parent,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert inspected.returncode == 0, inspected.stdout + inspected.stderr
    assert [tool["name"] for tool in json.loads(inspected.stdout)["tools"]] == list(DEFAULT_TOOLS)


# --- Claude Desktop, Cursor, VS Code: their documented shapes -------------------------------------------------


def interpolating(*variables: str) -> dict[str, str]:
    """A string whose every `${...}` is one of `variables` (regular expressions): what the client fills in. Any
    other would reach the server as written, a key of `${input:...}` included."""
    filled_in = rf"|\$\{{(?:{'|'.join(variables)})\}}" if variables else ""
    return {"type": "string", "pattern": rf"^(?:[^$]|\$(?!\{{){filled_in})*$"}


def string_map(value: dict[str, str]) -> dict[str, Any]:
    """An object whose every value is `value`: `env`, `headers`."""
    return {"type": "object", "additionalProperties": value}


# Claude Desktop, claude_desktop_config.json: "mcpServers", each server a command to start, with "args" and "env",
# and no interpolation (https://modelcontextprotocol.io/docs/develop/connect-local-servers). Remote servers are
# added as connectors in the app, not in this file.
PLAIN = interpolating()
CLAUDE_DESKTOP: dict[str, Any] = {
    "type": "object",
    "required": ["mcpServers"],
    "properties": {
        "mcpServers": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["command"],
                "properties": {"command": PLAIN, "args": {"type": "array", "items": PLAIN}, "env": string_map(PLAIN)},
                "additionalProperties": False,
            },
        }
    },
}

# Cursor, ~/.cursor/mcp.json and .cursor/mcp.json (https://cursor.com/docs/context/mcp): "mcpServers", each server
# either started by Cursor ("command", "args", "env", "envFile", "type": "stdio") or reached at a "url" with
# "headers" (and "auth" for a static OAuth client); values may use ${env:NAME}, ${userHome}, ${workspaceFolder},
# ${workspaceFolderBasename}, ${pathSeparator} and ${/}.
CURSOR_TEXT = interpolating(r"env:\w+", "userHome", "workspaceFolder", "workspaceFolderBasename", "pathSeparator", "/")
CURSOR: dict[str, Any] = {
    "type": "object",
    "required": ["mcpServers"],
    "properties": {
        "mcpServers": {
            "type": "object",
            "additionalProperties": {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["command"],
                        "properties": {
                            "type": {"const": "stdio"},
                            "command": CURSOR_TEXT,
                            "args": {"type": "array", "items": CURSOR_TEXT},
                            "env": string_map(CURSOR_TEXT),
                            "envFile": CURSOR_TEXT,
                        },
                        "additionalProperties": False,
                    },
                    {
                        "type": "object",
                        "required": ["url"],
                        "properties": {
                            "url": CURSOR_TEXT,
                            "headers": string_map(CURSOR_TEXT),
                            "auth": {
                                "type": "object",
                                "required": ["CLIENT_ID"],
                                "properties": {
                                    "CLIENT_ID": {"type": "string"},
                                    "CLIENT_SECRET": {"type": "string"},
                                    "scopes": {"type": "array", "items": {"type": "string"}},
                                },
                                "additionalProperties": False,
                            },
                        },
                        "additionalProperties": False,
                    },
                ]
            },
        }
    },
}

# VS Code, .vscode/mcp.json and the user's mcp.json
# (https://code.visualstudio.com/docs/agents/reference/mcp-configuration): "servers" and "inputs" only. A server has
# a "type": "stdio" with "command" ("args", "env", "envFile", "sandboxEnabled", "sandbox", "dev"), or "http" / "sse"
# with "url" ("headers", "oauth", "dev"). An input has "type", "id" and "description" ("password"). Values may use
# ${input:id}, ${env:NAME} and the predefined variables (https://code.visualstudio.com/docs/reference/variables-reference).
VSCODE_TEXT = interpolating(
    r"input:[\w-]+",
    r"env:\w+",
    r"config:[\w.-]+",
    "userHome",
    r"workspaceFolder(?::[\w-]+)?",
    "workspaceFolderBasename",
    "cwd",
    "execPath",
    "pathSeparator",
    "/",
)
VSCODE_SERVER_COMMON = {"dev": {"type": "object"}}
VSCODE: dict[str, Any] = {
    "type": "object",
    "required": ["servers"],
    "properties": {
        "servers": {
            "type": "object",
            "additionalProperties": {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["type", "command"],
                        "properties": {
                            "type": {"const": "stdio"},
                            "command": VSCODE_TEXT,
                            "args": {"type": "array", "items": VSCODE_TEXT},
                            "env": string_map(VSCODE_TEXT),
                            "envFile": VSCODE_TEXT,
                            "sandboxEnabled": {"type": "boolean"},
                            "sandbox": {"type": "object"},
                            **VSCODE_SERVER_COMMON,
                        },
                        "additionalProperties": False,
                    },
                    {
                        "type": "object",
                        "required": ["type", "url"],
                        "properties": {
                            "type": {"enum": ["http", "sse"]},
                            "url": VSCODE_TEXT,
                            "headers": string_map(VSCODE_TEXT),
                            "oauth": {
                                "type": "object",
                                "required": ["clientId"],
                                "properties": {"clientId": {"type": "string"}},
                                "additionalProperties": False,
                            },
                            **VSCODE_SERVER_COMMON,
                        },
                        "additionalProperties": False,
                    },
                ]
            },
        },
        "inputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "id", "description"],
                "properties": {
                    "type": {"enum": ["promptString", "pickString"]},
                    "id": {"type": "string", "pattern": r"^[\w-]+$"},
                    "description": {"type": "string"},
                    "password": {"type": "boolean"},
                    "default": {"type": "string"},
                    "options": {"type": "array"},
                },
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
}

DOCUMENTED_SHAPES = {"Claude Desktop": CLAUDE_DESKTOP, "Cursor": CURSOR, "VS Code": VSCODE}


def client_of(path: str) -> str | None:
    """The client whose configuration file the manifest `path` is, if its app cannot run here."""
    if path.endswith("claude_desktop_config.json"):
        return "Claude Desktop"
    return {"cursor": "Cursor", "vscode": "VS Code"}.get(Path(path).parent.name)


def shape_errors(config: Any, client: str) -> list[str]:
    validator = jsonschema.Draft202012Validator(DOCUMENTED_SHAPES[client])
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(config)]


DESKTOP_SNIPPETS = [(path, snippet) for path, snippet in linked_snippets(README) if client_of(path)]
DESKTOP_MANIFESTS = sorted(
    str(path.relative_to(ROOT)) for path in (ROOT / "manifests").rglob("*.json") if client_of(str(path))
)


def test_the_readme_shows_a_snippet_for_each_client_that_cannot_run_here() -> None:
    assert {client_of(path) for path, _ in DESKTOP_SNIPPETS} == set(DOCUMENTED_SHAPES), DESKTOP_SNIPPETS


@pytest.mark.parametrize(("path", "snippet"), DESKTOP_SNIPPETS, ids=[path for path, _ in DESKTOP_SNIPPETS])
def test_each_readme_snippet_has_its_clients_documented_shape(path: str, snippet: str) -> None:
    client = client_of(path)
    assert client is not None
    assert not shape_errors(json.loads(snippet), client), (client, shape_errors(json.loads(snippet), client))


@pytest.mark.parametrize("path", DESKTOP_MANIFESTS)
def test_each_manifest_has_its_clients_documented_shape(path: str) -> None:
    client = client_of(path)
    assert client is not None
    config = json.loads((ROOT / path).read_text())
    assert not shape_errors(config, client), (client, shape_errors(config, client))
