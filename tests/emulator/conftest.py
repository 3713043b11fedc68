"""The emulator's own tests: one emulator per module, configured by the module's EMULATOR_CONFIG."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest

from glm_mcp.emulator import Emulator, EmulatorConfig

GENERAL_KEY = "emulator.key-general"
CODING_KEY = "emulator.key-coding"


@pytest.fixture(scope="module")
def emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    config: EmulatorConfig = getattr(request.module, "EMULATOR_CONFIG", EmulatorConfig())
    with Emulator(config) as emu:
        yield emu


@pytest.fixture(scope="module")
def shared_client(emulator: Emulator) -> Iterator[httpx2.Client]:
    """One client for the module: building one costs tens of milliseconds (its TLS context)."""
    headers = {"Authorization": f"Bearer {GENERAL_KEY}"}
    with httpx2.Client(base_url=emulator.base_url, headers=headers, timeout=10) as c:
        yield c


@pytest.fixture
def client(emulator: Emulator, shared_client: httpx2.Client) -> httpx2.Client:
    emulator.state.clear()
    return shared_client
