"""Settings of the emulator, and the model families whose quirks it reproduces."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

DEFAULT_MODELS: tuple[str, ...] = (
    "glm-4-plus",
    "glm-4-0520",
    "glm-4",
    "glm-4-air",
    "glm-4-airx",
    "glm-4-long",
    "glm-4-flash",
    "glm-4.5",
    "glm-4.5-air",
    "glm-4.5-flash",
    "glm-4.6",
    "glm-4.7",
    "glm-5",
    "glm-4.5v",
    "glm-4.6v",
    "glm-4v-flash",
    "glm-z1-air",
    "glm-z1-flash",
)

GENERAL_PREFIX = "/api/paas/v4"
CODING_PREFIX = "/api/coding/paas/v4"


class Plan(Enum):
    """The subscription a key belongs to; each plan has its own path prefix."""

    GENERAL = GENERAL_PREFIX
    CODING = CODING_PREFIX

    @property
    def prefix(self) -> str:
        return self.value


@dataclass
class EmulatorConfig:
    """What the emulator accepts and how fast it answers.

    The instance is read on every request, so changing a field of a running emulator's config
    takes effect from the next request on (tests use this to slow streams down).
    """

    api_keys: tuple[str, ...] = ("emulator.key-general",)
    """Keys of the general plan, accepted on ``/api/paas/v4``; form ``<id>.<secret>``."""
    coding_keys: tuple[str, ...] = ("emulator.key-coding",)
    """Keys of the coding plan, accepted on ``/api/coding/paas/v4``."""
    latency: float = 0.0
    """Seconds before a JSON response, or before the first chunk of a stream."""
    chunk_delay: float = 0.0
    """Seconds between two stream chunks."""
    async_delay: float = 0.3
    """Seconds an async task reports PROCESSING before its result is available."""
    models: tuple[str, ...] = DEFAULT_MODELS
    """Model codes the emulator serves; any other model is answered with error 1211."""
    model_label: str = ""
    """Appended to the model code every answer reports (``glm-4.6`` becomes ``glm-4.6`` + label), so that
    whoever reads an answer can tell it is made up; empty: the model as asked, as the platform reports it."""
    max_in_flight: int | None = None
    """API requests answered at once (a stream until its end); more are refused at once with
    429 / 1302, as the platform refuses a key's excess concurrency. None: no limit."""

    def plan_of(self, key: str) -> Plan | None:
        """The plan of a raw API key, or None when the key is unknown."""
        if key in self.api_keys:
            return Plan.GENERAL
        if key in self.coding_keys:
            return Plan.CODING
        return None


@dataclass(frozen=True)
class ModelTraits:
    """The model-family behaviours the real service shows and the emulator reproduces."""

    thinks: bool
    """Returns ``reasoning_content`` unless ``thinking`` is disabled (GLM-4.5 and later)."""
    think_tags: bool
    """Puts its reasoning inside ``content`` as ``<think>…</think>`` (the GLM-Z1 quirk)."""
    vision: bool
    """Accepts image/video/file parts and wraps answers in ``<|begin_of_box|>…<|end_of_box|>``."""


def traits_of(model: str) -> ModelTraits:
    """Traits of a model code, decided by its family prefix so new versions need no table entry."""
    version = model.split("-")[1] if "-" in model else ""  # "4.5v" in "glm-4.5v"
    return ModelTraits(
        thinks=model.startswith(("glm-4.5", "glm-4.6", "glm-4.7", "glm-5")),
        think_tags=model.startswith("glm-z1"),
        vision=version.endswith("v"),
    )
