"""`glm-mcp demo`: the real server, answered by the bundled emulator instead of the platform."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import SecretStr

from glm_mcp.config import Settings
from glm_mcp.emulator import Emulator, EmulatorConfig

__all__ = ["DEMO_DIR_PREFIX", "DEMO_MODEL_LABEL", "running_demo"]

DEMO_MODEL_LABEL = " (demo: made up by the GLM emulator, not GLM)"
"""Added to the model name of every demo answer, so nobody mistakes its filler text for GLM's."""

DEMO_DIR_PREFIX = "glm-mcp-demo-"
"""The name of the demo's temporary directory starts with this (in the system's temporary directory)."""


@contextmanager
def running_demo(settings: Settings) -> Iterator[tuple[Settings, Emulator]]:
    """The demo for as long as the block runs: an emulator and `settings` pointed at it, keeping their job
    registry in a temporary directory. When the block ends (the server stopped, by Ctrl-C or otherwise),
    the emulator stops and the directory is removed: a demo leaves nothing behind."""
    with (
        tempfile.TemporaryDirectory(prefix=DEMO_DIR_PREFIX, ignore_cleanup_errors=True) as data_dir,
        Emulator(EmulatorConfig(model_label=DEMO_MODEL_LABEL)) as emulator,  # on a free loopback port
    ):
        yield _demo_settings(settings, emulator, Path(data_dir)), emulator


def _demo_settings(settings: Settings, emulator: Emulator, data_dir: Path) -> Settings:
    """`settings` pointed at `emulator`, with one of its keys and the job registry in `data_dir` (demo jobs
    do not belong among the user's real ones): everything else stays as configured."""
    return settings.replace(
        upstream={
            "api_key": SecretStr(emulator.config.api_keys[0]),
            "key_source": "the demo emulator",
            "auth_mode": "bearer",
            "base_url_override": emulator.base_url,
        },
        registry={"data_dir": data_dir},
    )
