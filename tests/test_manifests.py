"""The install manifests against the server itself, and against the tools of their own ecosystems.

Every manifest must name the real command, the real tools and real variables: a client that
installs from a stale manifest fails in ways its user cannot diagnose. The Claude Desktop bundle
is checked by `mcpb` itself (validate and pack), the registry's server.json by the registry's
published schema. When a tool or the version changes, `scripts/sync-manifests` regenerates what
the manifests copy from the server.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import tomllib
import zipfile
from pathlib import Path
from typing import Any, get_args

import jsonschema
import pytest
from mcp import Client

from glm_mcp import __version__
from glm_mcp.cli import DEFAULT_HTTP_PORT
from glm_mcp.config import API_KEY_VARS, ENV_VARS, Plan, Region, Settings
from glm_mcp.server import create_server
from glm_mcp.server.http import MCP_PATH
from tests.node_tools import run_node_tool

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "manifests"
BUNDLE = MANIFESTS / "mcpb" / "manifest.json"
REGISTRY_SCHEMA = ROOT / "tests" / "schemas" / "mcp-registry-server-2025-12-11.schema.json"
REGISTRY_SCHEMA_SHA256 = "3fba09590c99f61735d234822279f4223fab9e300c0a81e81c91ab62a4114de0"
MCPB = "@anthropic-ai/mcpb@2.1.2"
SYNC = "the manifests are out of date: run `python scripts/sync-manifests`"

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
DISTRIBUTION = PYPROJECT["name"]
COMMAND = next(name for name, target in PYPROJECT["scripts"].items() if target == "glm_mcp.cli:main")
STDIO_ARGS = ["--from", DISTRIBUTION, COMMAND]
HTTP_URL = f"http://127.0.0.1:{DEFAULT_HTTP_PORT}{MCP_PATH}"
KNOWN_VARIABLES = {variable.name for variable in ENV_VARS} | set(API_KEY_VARS)
DEFAULTS = {variable.name: variable.default for variable in ENV_VARS}

CLIENT_CONFIGS = ["claude_desktop_config.json", "cursor/mcp.json", "vscode/mcp.json"]
HTTP_CONFIGS = ["cursor/mcp-http.json", "vscode/mcp-http.json"]
MANIFEST_FILES = [
    "mcpb/manifest.json",
    "server.json",
    "claude-code.sh",
    *CLIENT_CONFIGS,
    *HTTP_CONFIGS,
]


def load(name: str) -> Any:
    return json.loads((MANIFESTS / name).read_text())


@pytest.fixture
async def live_tools() -> list[dict[str, str]]:
    """The tools as a client sees them: the truth every manifest is compared with."""
    async with Client(create_server(Settings.from_env({}))) as client:
        return [
            {"name": tool.name, "description": tool.description or ""} for tool in (await client.list_tools()).tools
        ]


# --- every manifest -----------------------------------------------------------------------


@pytest.mark.parametrize("name", MANIFEST_FILES)
def test_every_variable_a_manifest_names_is_one_the_server_reads(name: str) -> None:
    text = (MANIFESTS / name).read_text()
    named = set(re.findall(r"\b(?:GLM|ZAI|ZHIPUAI)_[A-Z_]+\b", text))
    assert named, f"{name} names no variable at all"
    unknown = named - KNOWN_VARIABLES
    assert not unknown, f"{name} names variables the server does not read: {unknown}"


@pytest.mark.parametrize("name", CLIENT_CONFIGS)
def test_client_configs_start_the_real_command(name: str) -> None:
    config = load(name)
    (server,) = (config.get("mcpServers") or config["servers"]).values()
    assert server["command"] == "uvx"
    assert server["args"] == STDIO_ARGS
    assert set(server["env"]) == {"GLM_API_KEY"}


@pytest.mark.parametrize("name", HTTP_CONFIGS)
def test_http_configs_point_at_the_real_endpoint_with_a_token(name: str) -> None:
    config = load(name)
    (server,) = (config.get("mcpServers") or config["servers"]).values()
    assert server["url"] == HTTP_URL
    assert re.fullmatch(r"Bearer \$\{(env|input):[\w-]+\}", server["headers"]["Authorization"])


@pytest.mark.parametrize("name", ["vscode/mcp.json", "vscode/mcp-http.json"])
def test_vscode_prompts_for_every_secret_it_uses(name: str) -> None:
    config = load(name)
    inputs = {item["id"]: item for item in config["inputs"]}
    used = set(re.findall(r"\$\{input:([\w-]+)\}", json.dumps(config["servers"])))
    assert used == set(inputs)
    assert all(item["type"] == "promptString" and item["password"] for item in inputs.values())


def test_claude_code_commands_start_the_real_command_and_endpoint() -> None:
    lines = [line for line in (MANIFESTS / "claude-code.sh").read_text().splitlines() if line.startswith("claude ")]
    stdio, http = (shlex.split(line) for line in lines)
    assert stdio[:3] == ["claude", "mcp", "add"]
    assert stdio[stdio.index("--") + 1 :] == ["uvx", *STDIO_ARGS]
    assert stdio[stdio.index("--env") + 1].startswith("GLM_API_KEY=")
    assert http[:5] == ["claude", "mcp", "add", "--transport", "http"]
    assert HTTP_URL in http
    assert http[http.index("--header") + 1].startswith("Authorization: Bearer $")


# --- the Claude Desktop bundle ------------------------------------------------------------


@pytest.mark.anyio
async def test_the_bundle_lists_the_live_tools_and_version(live_tools: list[dict[str, str]]) -> None:
    bundle = load("mcpb/manifest.json")
    assert bundle["tools"] == live_tools, SYNC
    assert bundle["version"] == __version__, SYNC


def test_the_bundle_runs_the_real_command_with_the_users_settings() -> None:
    bundle = load("mcpb/manifest.json")
    config = bundle["server"]["mcp_config"]
    assert (config["command"], config["args"]) == ("uvx", STDIO_ARGS)
    user_config = bundle["user_config"]
    assert user_config["api_key"]["sensitive"] is True and user_config["api_key"]["required"] is True
    fields = {
        variable: value.removeprefix("${user_config.").removesuffix("}") for variable, value in config["env"].items()
    }
    assert set(fields.values()) == set(user_config), "every setting the user is asked for reaches the server"
    for variable, field in fields.items():
        # Claude Desktop passes the default when the user leaves a field empty: it must be the server's own.
        assert user_config[field].get("default", "(none)") == DEFAULTS[variable], variable


def test_mcpb_validates_and_packs_the_bundle(tmp_path: Path) -> None:
    validate = run_node_tool(MCPB, "mcpb", "validate", str(BUNDLE), timeout=120)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "Manifest schema validation passes" in validate.stdout
    output = tmp_path / "glm-mcp.mcpb"
    pack = run_node_tool(MCPB, "mcpb", "pack", str(BUNDLE.parent), str(output), timeout=120)
    assert pack.returncode == 0, pack.stdout + pack.stderr
    with zipfile.ZipFile(output) as archive:
        assert json.loads(archive.read("manifest.json")) == load("mcpb/manifest.json")


# --- the MCP registry's server.json -------------------------------------------------------


def test_the_vendored_registry_schema_is_the_published_one() -> None:
    assert hashlib.sha256(REGISTRY_SCHEMA.read_bytes()).hexdigest() == REGISTRY_SCHEMA_SHA256


def test_server_json_is_valid_against_the_registry_schema() -> None:
    schema = json.loads(REGISTRY_SCHEMA.read_text())
    server = load("server.json")
    assert server["$schema"] == schema["$id"]
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(server)]
    assert not errors, errors


def test_server_json_describes_the_real_package() -> None:
    server = load("server.json")
    assert server["version"] == __version__, SYNC
    (package,) = server["packages"]
    assert package["registryType"] == "pypi"
    assert package["identifier"] == DISTRIBUTION
    assert package["version"] == __version__, SYNC
    assert package["transport"] == {"type": "stdio"}
    variables = {variable["name"]: variable for variable in package["environmentVariables"]}
    assert variables["GLM_API_KEY"]["isSecret"] is True and variables["GLM_API_KEY"]["isRequired"] is True
    for name, variable in variables.items():
        assert variable.get("default", "(none)") == DEFAULTS[name], name
    assert variables["GLM_REGION"]["choices"] == list(get_args(Region))
    assert variables["GLM_PLAN"]["choices"] == list(get_args(Plan))


def test_the_readme_carries_the_registrys_ownership_marker() -> None:
    """The registry accepts a PyPI package only if its description says `mcp-name: <server name>`."""
    assert f"mcp-name: {load('server.json')['name']}" in (ROOT / "README.md").read_text()
