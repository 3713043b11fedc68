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
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, get_args

import jsonschema
import pytest
from mcp import Client, StdioServerParameters
from packaging.requirements import Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags, mac_platforms, parse_tag
from packaging.utils import canonicalize_name

from glm_mcp import __version__
from glm_mcp.cli import DEFAULT_HTTP_PORT
from glm_mcp.config import API_KEY_VARS, ENV_VARS, Plan, Region
from glm_mcp.emulator import Emulator
from glm_mcp.server.http import MCP_PATH
from rigs.node_tools import MCPB, run_node_tool
from tests.conftest import DEFAULT_TOOLS, GENERAL_KEY, upstream_calls
from tests.processes import scratch_dir

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "manifests"
BUNDLE = MANIFESTS / "mcpb" / "manifest.json"
REGISTRY_SCHEMA = ROOT / "tests" / "schemas" / "mcp-registry-server-2025-12-11.schema.json"
REGISTRY_SCHEMA_SHA256 = "3fba09590c99f61735d234822279f4223fab9e300c0a81e81c91ab62a4114de0"
SYNC = "the manifests are out of date: run `python scripts/sync-manifests`"

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
DISTRIBUTION = PYPROJECT["name"]
COMMAND = next(name for name, target in PYPROJECT["scripts"].items() if target == "glm_mcp.cli:main")
STDIO_ARGS = ["--from", DISTRIBUTION, COMMAND]
CHECKOUT = "/path/to/glm-mcp"
"""Where the configs that work today say the checkout is: the user puts the path of theirs."""
TODAY_PROGRAM = f"{CHECKOUT}/.venv/bin/{COMMAND}"
"""What `scripts/serve` installs (README command 1): the program every client starts today."""
HTTP_URL = f"http://127.0.0.1:{DEFAULT_HTTP_PORT}{MCP_PATH}"
KNOWN_VARIABLES = {variable.name for variable in ENV_VARS} | set(API_KEY_VARS)
DEFAULTS = {variable.name: variable.default for variable in ENV_VARS}

TODAY_CONFIGS = ["claude_desktop_config.json", "cursor/mcp.json", "vscode/mcp.json", "claude-code/mcp.json"]
AFTER_RELEASE_CONFIGS = [
    "after-release/claude_desktop_config.json",
    "after-release/cursor/mcp.json",
    "after-release/vscode/mcp.json",
]
HTTP_CONFIGS = ["cursor/mcp-http.json", "vscode/mcp-http.json"]
MANIFEST_FILES = [
    "mcpb/manifest.json",
    "server.json",
    "claude-code/add.sh",
    *TODAY_CONFIGS,
    *AFTER_RELEASE_CONFIGS,
    *HTTP_CONFIGS,
]
CLAUDE_CODE_LINES = [
    line for line in (MANIFESTS / "claude-code" / "add.sh").read_text().splitlines() if line.startswith("claude ")
]


def load(name: str) -> Any:
    return json.loads((MANIFESTS / name).read_text())


def servers_of(config: dict[str, Any]) -> dict[str, Any]:
    return config.get("mcpServers") or config["servers"]  # type: ignore[no-any-return]


# --- every manifest -----------------------------------------------------------------------


@pytest.mark.parametrize("name", MANIFEST_FILES)
def test_every_variable_a_manifest_names_is_one_the_server_reads(name: str) -> None:
    text = (MANIFESTS / name).read_text()
    named = set(re.findall(r"\b(?:GLM|ZAI|ZHIPUAI)_[A-Z_]+\b", text))
    assert named, f"{name} names no variable at all"
    unknown = named - KNOWN_VARIABLES
    assert not unknown, f"{name} names variables the server does not read: {unknown}"


def test_sync_manifests_finds_nothing_stale() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "sync-manifests"), "--check"], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize("name", HTTP_CONFIGS)
def test_http_configs_point_at_the_real_endpoint_with_a_token(name: str) -> None:
    (server,) = servers_of(load(name)).values()
    assert server["url"] == HTTP_URL
    assert re.fullmatch(r"Bearer \$\{(env|input):[\w-]+\}", server["headers"]["Authorization"])


@pytest.mark.parametrize("name", ["vscode/mcp.json", "after-release/vscode/mcp.json", "vscode/mcp-http.json"])
def test_vscode_prompts_for_every_secret_it_uses(name: str) -> None:
    config = load(name)
    inputs = {item["id"]: item for item in config["inputs"]}
    used = set(re.findall(r"\$\{input:([\w-]+)\}", json.dumps(config["servers"])))
    assert used == set(inputs)
    assert all(item["type"] == "promptString" and item["password"] for item in inputs.values())


# --- Claude Code's command lines -------------------------------------------------------------


def started_by(line: str) -> list[str]:
    """What a `claude mcp add ... -- <command> [args...]` line starts: the words after `--`, which Claude Code itself
    stores as the command (tests/test_client_set_ups.py runs each line through Claude Code and checks that)."""
    return shlex.split(line.partition(" -- ")[2])


def test_claude_code_commands_start_the_real_thing() -> None:
    today, released, http = CLAUDE_CODE_LINES
    assert started_by(today) == [TODAY_PROGRAM]
    assert started_by(released) == ["uvx", *STDIO_ARGS]
    assert HTTP_URL in shlex.split(http) and not started_by(http)
    text = (MANIFESTS / "claude-code" / "add.sh").read_text()
    assert text.index("Today, from a checkout") < text.index(today)
    assert text.index("After the first release") < text.index(released)


# --- today's set-ups, started as each client starts them ----------------------------------------


def as_client_starts(command: str, args: list[str], env: dict[str, str], emulator: Emulator) -> StdioServerParameters:
    """The server a client would start, in this checkout, with the key typed in and the emulator as the platform."""
    program = command.replace(CHECKOUT, str(ROOT))
    assert Path(program).is_file(), f"{program} is missing: run scripts/serve --version"
    filled = {name: GENERAL_KEY if name == "GLM_API_KEY" else value for name, value in env.items()}
    base = {"PATH": "/usr/bin:/bin", "HOME": scratch_dir(), "GLM_DATA_DIR": scratch_dir()}
    return StdioServerParameters(command=program, args=args, env={**base, **filled, "GLM_BASE_URL": emulator.base_url})


@pytest.mark.anyio
@pytest.mark.parametrize("name", [*TODAY_CONFIGS, "claude-code/add.sh"])
async def test_todays_set_ups_work_as_written(name: str, emulator: Emulator) -> None:
    if name.endswith(".sh"):
        command, *args = started_by(CLAUDE_CODE_LINES[0])
        env = dict(item.split("=", 1) for item in re.findall(r"--env (\S+)", CLAUDE_CODE_LINES[0]))
    else:
        (server,) = servers_of(load(name)).values()
        command, args, env = server["command"], server["args"], server["env"]
    async with Client(as_client_starts(command, args, env, emulator), mode="legacy") as client:
        assert [tool.name for tool in (await client.list_tools()).tools] == list(DEFAULT_TOOLS)
        answer = await client.call_tool("chat", {"prompt": "Hello from a client config"})
    assert not answer.is_error, answer.content


# --- the Claude Desktop bundle ------------------------------------------------------------


def test_the_bundle_asks_for_the_key_as_a_secret_and_leaves_each_setting_at_the_servers_default() -> None:
    bundle = load("mcpb/manifest.json")
    config = bundle["server"]["mcp_config"]
    user_config = bundle["user_config"]
    assert user_config["api_key"]["sensitive"] is True and user_config["api_key"]["required"] is True
    fields = {
        variable: value.removeprefix("${user_config.").removesuffix("}") for variable, value in config["env"].items()
    }
    assert set(fields.values()) == set(user_config), "every setting the user is asked for reaches the server"
    for variable, field in fields.items():
        # Claude Desktop passes the default when the user leaves a field empty: it must be the server's own.
        assert user_config[field].get("default", "(none)") == DEFAULTS[variable], variable


def test_mcpb_validates_the_bundle_manifest() -> None:
    validate = run_node_tool(MCPB, "mcpb", "validate", str(BUNDLE), timeout=120)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "Manifest schema validation passes" in validate.stdout


def substituted(value: str, directory: Path, user: dict[str, str]) -> str:
    """A manifest string as Claude Desktop fills it: ${__dirname} and ${user_config.<field>}."""
    value = value.replace("${__dirname}", str(directory))
    return re.sub(r"\$\{user_config\.(\w+)\}", lambda match: user[match.group(1)], value)


SERVED_PYTHONS = ["3.11", "3.12", "3.13", "3.14"]
"""The Pythons scripts/stage-mcpb puts wheels in a bundle for, unless told otherwise."""
BUILDER_PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"
BUNDLE_MACHINES = {"darwin": ["arm64", "x86_64"], "win32": ["x86_64"], "linux": ["x86_64"]}
SERVES = {
    "darwin": "CPython 3.11, 3.12, 3.13, 3.14 on macOS 11 or later (arm64, x86_64)",
    "win32": "CPython 3.11, 3.12, 3.13, 3.14 on Windows (x86_64)",
    "linux": "CPython 3.11, 3.12, 3.13, 3.14 on Linux (glibc 2.17 or later) (x86_64)",
}


def stage_bundle(directory: Path, *options: str) -> str:
    """scripts/stage-mcpb as scripts/build-mcpb runs it; returns the line saying what the bundle serves."""
    staged = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "stage-mcpb"), *options, str(directory)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert staged.returncode == 0, staged.stdout + staged.stderr
    return staged.stdout.strip().splitlines()[-1]


def installed_python(version: str) -> Path | None:
    """A CPython `version` on this machine with nothing installed in it, or None: the builder's own, or another."""
    if version == BUILDER_PYTHON:
        return Path(sys._base_executable)  # type: ignore[attr-defined]  # the system's Python, not this .venv
    candidates = [shutil.which(f"python{version}"), f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    candidates += sorted(str(path) for path in Path.home().glob(f".pyenv/versions/{version}.*/bin/python{version}"))
    for candidate in candidates:
        if candidate is None or not Path(candidate).is_file():
            continue
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True
        )
        if probe.returncode == 0 and probe.stdout.strip() == version:  # a pyenv shim of an unselected version fails
            return Path(candidate)
    return None


@pytest.fixture(scope="module")
def installed_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This machine's bundle as Claude Desktop holds it: staged by scripts/stage-mcpb, packed by mcpb, unpacked."""
    tmp_path = tmp_path_factory.mktemp("bundle")
    staged = tmp_path / "stage" / "glm-mcp"
    assert stage_bundle(staged) == SERVES[sys.platform]
    output = tmp_path / "glm-mcp.mcpb"
    pack = run_node_tool(MCPB, "mcpb", "pack", str(staged), str(output), timeout=600)
    assert pack.returncode == 0, pack.stdout + pack.stderr
    installed = tmp_path / "Claude Extensions" / "glm-mcp"  # where Claude Desktop unpacks it; a space on purpose
    with zipfile.ZipFile(output) as archive:
        archive.extractall(installed)
    return installed


@pytest.mark.anyio
@pytest.mark.parametrize("version", SERVED_PYTHONS)
async def test_the_packed_bundle_runs_from_a_fresh_directory_without_the_index(
    version: str, installed_bundle: Path, tmp_path: Path, emulator: Emulator
) -> None:
    """Under each Python the bundle serves, the builder's (3.11 here) and any other installed, as the host starts it."""
    python = installed_python(version)
    if python is None:
        pytest.skip(f"no Python {version} on this machine to start the bundle with")
    assert subprocess.run([python, "-c", "import mcp"], capture_output=True, cwd=tmp_path).returncode != 0, (
        "the system Python has mcp installed: the test could not tell the bundle's own copy from it"
    )
    installed = installed_bundle
    manifest = json.loads((installed / "manifest.json").read_text())
    assert {k: v for k, v in manifest.items() if k != "compatibility"} == {
        k: v for k, v in load("mcpb/manifest.json").items() if k != "compatibility"
    }
    assert manifest["compatibility"]["platforms"] == [sys.platform]
    assert manifest["compatibility"]["runtimes"]["python"] == ">=3.11.0 <3.15.0"
    config = manifest["server"]["mcp_config"]
    user = {field: spec.get("default", "") for field, spec in manifest["user_config"].items()}
    user["api_key"] = GENERAL_KEY
    env = {name: substituted(value, installed, user) for name, value in config["env"].items()}
    on_path = tmp_path / "bin"  # the user's PATH, where this Python is python3 (and python, as Windows names it)
    on_path.mkdir()
    for name in ("python3", "python"):
        (on_path / name).symlink_to(python)
    env |= {"PATH": f"{on_path}{os.pathsep}/usr/bin:/bin", "HOME": str(tmp_path / "home")}
    env["GLM_BASE_URL"] = emulator.base_url  # the only addition: the emulator answers instead of the platform
    command = shutil.which(config["command"], path=env["PATH"])
    assert command is not None
    reported = subprocess.run([command, "--version"], capture_output=True, text=True).stdout
    assert reported.startswith(f"Python {version}."), f"the host finds this Python as python3, not {reported}"
    params = StdioServerParameters(
        command=command, args=[substituted(arg, installed, user) for arg in config["args"]], env=env
    )
    async with Client(params, mode="legacy") as client:
        tools = [tool.name for tool in (await client.list_tools()).tools]
        answer = await client.call_tool("chat", {"prompt": "Hello from the bundle"})
    assert tools == [tool["name"] for tool in manifest["tools"]]
    assert not answer.is_error, answer.content
    assert upstream_calls(emulator, "/chat/completions"), "the bundle's server answered from the emulator"


def test_a_python_the_bundle_does_not_serve_is_told_which_ones_it_does(installed_bundle: Path) -> None:
    python = next(filter(None, map(installed_python, ["3.10", "3.9", "3.8"])), None)
    if python is None:
        pytest.skip("no Python older than 3.11 on this machine")
    started = subprocess.run(
        [python, str(installed_bundle / "server" / "main.py")], capture_output=True, text=True, timeout=60
    )
    assert started.returncode == 1
    assert started.stderr.count("\n") == 1, started.stderr  # one line, no traceback
    assert f"serves {SERVES[sys.platform]}" in started.stderr
    version = subprocess.run([python, "-c", "import platform; print(platform.python_version())"], capture_output=True)
    assert f"started by Python {version.stdout.decode().strip()} " in started.stderr and str(python) in started.stderr


def test_the_launcher_honours_pth_files_as_site_packages_would(tmp_path: Path) -> None:
    """pywin32 is importable only through the .pth file it installs: the bundle's sets are site directories."""
    site_dir = tmp_path / "set"
    (site_dir / "win32" / "lib").mkdir(parents=True)
    (site_dir / "win32" / "lib" / "pth_listed_module.py").write_text("FOUND = True\n")
    (site_dir / "pywin32.pth").write_text("# as pywin32's\nwin32\nwin32/lib\n")
    probe = (
        "import runpy, sys\n"
        "launcher = runpy.run_path(sys.argv[1])\n"
        "launcher['activate']([__import__('pathlib').Path(sys.argv[2])])\n"
        "import pth_listed_module, json\n"
        "print(json.dumps(sys.path))\n"
    )
    launcher = MANIFESTS / "mcpb" / "server" / "main.py"
    run = subprocess.run(
        [sys.executable, "-c", probe, str(launcher), str(site_dir)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    path = json.loads(run.stdout)
    assert path[:3] == [str(site_dir), str(site_dir / "win32"), str(site_dir / "win32" / "lib")], path[:4]


# --- the bundles for the platforms Claude Desktop runs on, built here ---------------------


def marker_environment(system: str, machine: str, version: str) -> dict[str, str]:
    """What a requirement's markers see on that machine (PEP 508)."""
    return {
        "sys_platform": system,
        "platform_system": {"darwin": "Darwin", "win32": "Windows", "linux": "Linux"}[system],
        "os_name": "nt" if system == "win32" else "posix",
        "platform_machine": "AMD64" if system == "win32" else machine,
        "python_version": version,
        "python_full_version": f"{version}.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }


def supported_tags(system: str, machine: str, version: str) -> set[Tag]:
    """The wheel tags CPython `version` installs on that machine; macOS 11 is the oldest Claude Desktop runs on."""
    python = (3, int(version.split(".")[1]))
    if system == "darwin":
        platforms = list(mac_platforms((11, 0), machine))
    elif system == "win32":
        platforms = ["win_amd64"]
    else:
        platforms = [f"manylinux_2_{minor}_{machine}" for minor in range(17, 4, -1)]
        platforms += [f"manylinux{year}_{machine}" for year in ("2014", "2010", "1")]
    abi = f"cp{python[0]}{python[1]}"
    return set(cpython_tags(python, [abi], platforms)) | set(compatible_tags(python, abi, platforms))


BINARY_FORMAT = {"darwin": "Mach-O", "win32": "PE", "linux": "ELF"}


def binary_machines(path: Path) -> tuple[str, set[str]]:
    """A compiled file's format (ELF, Mach-O thin or universal, PE) and the machines it holds code for."""
    head = path.read_bytes()[:4096]
    if head[:4] == b"\x7fELF":
        return "ELF", {{0x3E: "x86_64", 0xB7: "arm64"}.get(int.from_bytes(head[18:20], "little"), "other")}
    mach_o = {0x01000007: "x86_64", 0x0100000C: "arm64"}
    if head[:4] == b"\xcf\xfa\xed\xfe":
        return "Mach-O", {mach_o.get(int.from_bytes(head[4:8], "little"), "other")}
    if head[:4] == b"\xca\xfe\xba\xbe":
        count = int.from_bytes(head[4:8], "big")
        kinds = [int.from_bytes(head[8 + 20 * i : 12 + 20 * i], "big") for i in range(count)]
        return "Mach-O", {mach_o.get(kind, "other") for kind in kinds}
    if head[:2] == b"MZ":
        pe = int.from_bytes(head[0x3C:0x40], "little")
        assert head[pe : pe + 4] == b"PE\0\0", path
        return "PE", {{0x8664: "x86_64", 0xAA64: "arm64"}.get(int.from_bytes(head[pe + 4 : pe + 6], "little"), "other")}
    raise AssertionError(f"{path} is no binary this test knows")


def required_distributions(
    dependencies: list[str], installed: Mapping[str, metadata.Distribution], environment: dict[str, str]
) -> set[str]:
    """The distributions `dependencies` need on the machine `environment` describes, markers and extras followed."""
    needed: set[str] = set()
    pending = [(Requirement(text), "") for text in dependencies]
    while pending:
        requirement, extra = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({**environment, "extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        assert name in installed, f"{name} is missing ({requirement})"
        if name in needed and not requirement.extras:
            continue
        needed.add(name)
        for text in installed[name].requires or []:
            pending += [(Requirement(text), wanted) for wanted in ("", *requirement.extras)]
    return needed


@pytest.fixture(scope="module")
def staged_bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """The macOS and Windows bundles, staged here on Linux as scripts/build-mcpb stages them."""
    root = tmp_path_factory.mktemp("bundles")
    return {system: (root / system, stage_bundle(root / system, "--os", system)) for system in ("darwin", "win32")}


@pytest.mark.parametrize("system", ["darwin", "win32"])
def test_a_bundle_built_here_for_macos_or_windows_declares_what_it_serves(
    system: str, staged_bundles: dict[str, tuple[Path, str]]
) -> None:
    staged, printed = staged_bundles[system]
    assert printed == SERVES[system]
    manifest = json.loads((staged / "manifest.json").read_text())
    assert manifest["compatibility"] == {"platforms": [system], "runtimes": {"python": ">=3.11.0 <3.15.0"}}
    built = json.loads((staged / "server" / "lib" / "built-for.json").read_text())
    assert built["serves"] == SERVES[system]
    assert set(built["targets"]) == {
        f"{system}-{machine}-cp{version.replace('.', '')}"
        for machine in BUNDLE_MACHINES[system]
        for version in SERVED_PYTHONS
    }
    validate = run_node_tool(MCPB, "mcpb", "validate", str(staged / "manifest.json"), timeout=120)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "Manifest schema validation passes" in validate.stdout


@pytest.mark.parametrize("system", ["darwin", "win32"])
def test_a_bundle_built_here_carries_wheels_for_each_machine_and_python_it_declares(
    system: str, staged_bundles: dict[str, tuple[Path, str]]
) -> None:
    staged, _ = staged_bundles[system]
    lib = staged / "server" / "lib"
    built = json.loads((lib / "built-for.json").read_text())
    for machine in BUNDLE_MACHINES[system]:
        for version in SERVED_PYTHONS:
            key = f"{system}-{machine}-cp{version.replace('.', '')}"
            directories = [lib / name for name in built["targets"][key]]
            entries = [entry.name for directory in directories for entry in directory.iterdir()]
            assert len(entries) == len(set(entries)), f"{key}: two directories hold the same name"
            installed: dict[str, metadata.Distribution] = {
                canonicalize_name(distribution.metadata["Name"]): distribution
                for distribution in metadata.distributions(path=[str(directory) for directory in directories])
            }
            supported = supported_tags(system, machine, version)
            compiled = set()
            for name, distribution in installed.items():
                wheel = distribution.read_text("WHEEL") or ""
                tags = {tag for line in wheel.splitlines() if line.startswith("Tag: ") for tag in parse_tag(line[5:])}
                assert tags & supported, f"{key}: {name} is built for {sorted(map(str, tags))}"
                if any(tag.platform != "any" for tag in tags):
                    compiled.add(name)
            assert {"pydantic-core", "rpds-py", "cffi", "cryptography"} <= compiled, key
            assert ("pywin32" in installed) == (system == "win32"), key  # mcp's marker: sys_platform == 'win32'
            environment = marker_environment(system, machine, version)
            assert required_distributions(PYPROJECT["dependencies"], installed, environment) == set(installed), key
            binaries = [
                path
                for directory in directories
                for path in directory.rglob("*")
                if path.suffix in {".so", ".pyd", ".dylib", ".dll"} and path.is_file()
            ]
            assert binaries, key
            for binary in binaries:
                assert binary_machines(binary) in [
                    (BINARY_FORMAT[system], {machine}),
                    (BINARY_FORMAT[system], {"arm64", "x86_64"}),  # a universal2 wheel's
                ], f"{key}: {binary.relative_to(lib)} is {binary_machines(binary)}"
                python_tag = re.search(r"\.(?:cpython-|cp)(\d+)", binary.name)
                assert python_tag is None or python_tag.group(1) == version.replace(".", ""), binary.name


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
