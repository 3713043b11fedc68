"""`glm-mcp demo`: the real server, answered by the bundled emulator instead of the platform."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import SecretStr

from glm_mcp.config import Settings
from glm_mcp.emulator import Emulator, EmulatorConfig

DEMO_MODEL_LABEL = " (demo: made up by the GLM emulator, not GLM)"
"""Added to the model name of every demo answer, so nobody mistakes its filler text for GLM's."""


def start_demo_emulator() -> Emulator:
    """An emulator on a free loopback port, in a background thread that ends with the process; its answers
    carry `DEMO_MODEL_LABEL` in their model name."""
    return Emulator(EmulatorConfig(model_label=DEMO_MODEL_LABEL)).start()


def demo_settings(settings: Settings, emulator: Emulator) -> Settings:
    """`settings` pointed at `emulator`, with one of its keys and a throwaway job registry (demo jobs
    do not belong among the user's real ones): everything else stays as configured."""
    return settings.replace(
        upstream={
            "api_key": SecretStr(emulator.config.api_keys[0]),
            "key_source": "the demo emulator",
            "auth_mode": "bearer",
            "base_url_override": emulator.base_url,
        },
        registry={"data_dir": Path(tempfile.mkdtemp(prefix="glm-mcp-demo-"))},
    )
