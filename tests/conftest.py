"""Shared fixtures: one emulator on a real loopback socket, and MCP clients wired to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from glm_mcp import config
from glm_mcp.app import create_server
from glm_mcp.config import Settings
from glm_mcp.emulator import Emulator, EmulatorConfig
from glm_mcp.tools.table import TOOLS

GENERAL_KEY = EmulatorConfig().api_keys[0]
DEFAULT_TOOLS = tuple(spec.name for spec in TOOLS if spec.toolset in Settings().server.toolsets)
"""The tools a server offers with the default toolsets, in the order it lists them."""
CODING_KEY = EmulatorConfig().coding_keys[0]

pytest_plugins = ["tests.tiers"]  # the fast tier (--fast) and the classifier that marks the tests starting processes


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session", autouse=True)
def _no_real_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Settings that name no GLM_DATA_DIR (`settings_for`, `Settings.from_env({})`, in module fixtures
    too) get a new scratch directory each: no test writes a job registry in the developer's own."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "user_data_dir", lambda: tmp_path_factory.mktemp("user-data"))
        yield


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """Where the `settings` fixture keeps its job registry."""
    return tmp_path / "data"


@pytest.fixture(scope="session")
def emulator_session() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def emulator(emulator_session: Emulator) -> Iterator[Emulator]:
    """The session's emulator, with its records cleared and its timing reset for each test, and cleared again
    after it, so that faults a test injected and did not use never reach a test of the session's emulator."""
    defaults = EmulatorConfig()
    emulator_session.state.clear()
    timings = ("latency", "chunk_delay", "async_delay", "batch_validating", "batch_item_seconds", "batch_finalizing")
    for name in (*timings, "file_ttl"):
        setattr(emulator_session.config, name, getattr(defaults, name))
    yield emulator_session
    emulator_session.state.clear()


def settings_for(emulator: Emulator, **env: str) -> Settings:
    """Settings as the server would read them from an environment pointing at `emulator`."""
    return Settings.from_env({"GLM_API_KEY": GENERAL_KEY, "GLM_BASE_URL": emulator.base_url, **env})


@pytest.fixture
def settings(emulator: Emulator, data_dir: Path) -> Settings:
    return settings_for(emulator, GLM_DATA_DIR=str(data_dir))


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with Client(create_server(settings)) as client:
        yield client


def upstream_calls(emulator: Emulator, path_suffix: str = "") -> list[Any]:
    """The requests the emulator received whose path ends with `path_suffix`."""
    return [e for e in emulator.state.exchanges if e.path.endswith(path_suffix)]


@pytest.fixture(scope="session")
def postgres_session() -> Iterator[Any]:
    """One real PostgreSQL server for the whole run (rigs/postgres_server.py), removed at the end."""
    from rigs import postgres_server

    why_not = postgres_server.available()
    if why_not is not None:
        pytest.skip(why_not)
    with postgres_server.postgres_server() as server:
        yield server


@pytest.fixture
def postgres(postgres_session: Any) -> Any:
    """The session's PostgreSQL server, its glm-mcp schema dropped: every test migrates a fresh one."""
    postgres_session.reset()
    return postgres_session


@pytest.fixture(scope="session")
def claude() -> Path:
    """Claude Code's executable (tests/claude_headless.py), installed from npm on first use."""
    from tests.claude_headless import claude_executable

    return claude_executable()


@pytest.fixture(scope="module")
def provider() -> Iterator[tuple[str, str]]:
    """A real OpenID provider (tests/oidc.py): its issuer, and the MCP endpoint URL its tokens are for (the port
    of the server the module starts, chosen first)."""
    from tests.oidc import oidc_provider

    with oidc_provider() as running:
        yield running
