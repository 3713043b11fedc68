"""Settings of the emulator, and the model families whose quirks it reproduces."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

K = 1024


@dataclass(frozen=True)
class ModelLimits:
    """How much a model reads and writes: prompts past ``context`` tokens get 400 / 1261, and a
    ``max_tokens`` above ``max_output`` gets 400 / 1210."""

    context: int
    max_output: int


MODEL_LIMITS: dict[str, ModelLimits] = {
    "glm-4-plus": ModelLimits(128 * K, 4095),
    "glm-4-0520": ModelLimits(128 * K, 4095),
    "glm-4": ModelLimits(128 * K, 4095),
    "glm-4-air": ModelLimits(128 * K, 4095),
    "glm-4-airx": ModelLimits(8 * K, 4095),
    "glm-4-long": ModelLimits(1000 * K, 4095),
    "glm-4-flash": ModelLimits(128 * K, 4095),
    "glm-4.5": ModelLimits(128 * K, 96 * K),
    "glm-4.5-air": ModelLimits(128 * K, 96 * K),
    "glm-4.5-x": ModelLimits(128 * K, 96 * K),
    "glm-4.5-airx": ModelLimits(128 * K, 96 * K),
    "glm-4.5-flash": ModelLimits(128 * K, 96 * K),
    "glm-4.6": ModelLimits(200 * K, 128 * K),
    "glm-4.7": ModelLimits(200 * K, 128 * K),
    "glm-4.7-flash": ModelLimits(200 * K, 128 * K),
    "glm-5": ModelLimits(200 * K, 128 * K),
    "glm-5.1": ModelLimits(200 * K, 128 * K),
    "glm-4.5v": ModelLimits(64 * K, 16 * K),
    "glm-4.6v": ModelLimits(128 * K, 32 * K),
    "glm-4.6v-flash": ModelLimits(128 * K, 32 * K),
    "glm-4v-flash": ModelLimits(16 * K, 1 * K),
    "glm-z1-air": ModelLimits(128 * K, 32 * K),
    "glm-z1-airx": ModelLimits(32 * K, 30 * K),
    "glm-z1-flash": ModelLimits(128 * K, 32 * K),
}
"""The chat models the emulator serves, with their context window and output cap (docs/glm-endpoints.md
says where each number comes from; most are the platform's published figures, a few are guesses)."""

DEFAULT_MODELS: tuple[str, ...] = tuple(MODEL_LIMITS)

IMAGE_MODELS: dict[str, str] = {
    "cogview-4": "1024x1024",
    "cogview-4-250304": "1024x1024",
    "cogview-3-flash": "1024x1024",
    "glm-image": "1280x1280",
}
"""Image models and their default ``size``."""

VIDEO_MODELS: tuple[str, ...] = ("cogvideox-3", "cogvideox-2", "cogvideox-flash", "viduq1-text", "vidu2-image")
FALLBACK_LIMITS = ModelLimits(128 * K, 4095)
"""Limits of a model added to ``EmulatorConfig.models`` without a ``MODEL_LIMITS`` entry."""

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
    """Chat model codes the emulator serves; any other model is answered with error 1211."""
    model_limits: dict[str, ModelLimits] = field(default_factory=dict)
    """Overrides of ``MODEL_LIMITS`` (context window, output cap) by model code, e.g. a small window for a test."""
    image_models: tuple[str, ...] = tuple(IMAGE_MODELS)
    """Models of ``POST /images/generations``; others get 1211."""
    video_models: tuple[str, ...] = VIDEO_MODELS
    """Models of ``POST /videos/generations``; others get 1211."""
    file_ttl: float = 30 * 24 * 3600.0
    """Seconds a generated image or video stays downloadable under ``/files/`` (its URL states the expiry), and an
    uploaded file or a batch's output stays in the Files API (the platform keeps them 30 days)."""
    batch_validating: float = 1.0
    """Seconds a new batch is ``validating`` before it is ``in_progress`` (or ``failed``, when its file is wrong)."""
    batch_item_seconds: float = 0.2
    """Seconds each line of a batch takes while ``in_progress``, one after the other: its counts grow with time."""
    batch_finalizing: float = 1.0
    """Seconds a batch is ``finalizing`` once its lines are done (and ``cancelling``, once cancelled)."""
    batch_expiry: float = 7 * 24 * 3600.0
    """Seconds after its creation when a batch not done by then is ``expired`` (the platform: 7 days)."""
    coding_token_quota: int = 40_000_000
    """Tokens a coding-plan key may use per 5-hour window, as the quota endpoint reports it."""
    coding_tool_quota: int = 1000
    """Web searches and page reads a coding-plan key may make per month (the quota's ``TIME_LIMIT``)."""
    coding_level: str = "pro"
    """The plan level the quota endpoint names (``lite``, ``pro``, ``max``)."""
    model_label: str = ""
    """Appended to the model code every answer reports (``glm-4.6`` becomes ``glm-4.6`` + label), so that
    whoever reads an answer can tell it is made up; empty: the model as asked, as the platform reports it."""
    max_in_flight: int | None = None
    """API requests answered at once (a stream until its end); more are refused at once with
    429 / 1302, as the platform refuses a key's excess concurrency. None: no limit."""

    def limits_of(self, model: str) -> ModelLimits:
        """The context window and output cap of a served model."""
        return self.model_limits.get(model) or MODEL_LIMITS.get(model) or FALLBACK_LIMITS

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
    tool_stream: bool
    """Streams tool-call arguments in pieces with ``tool_stream`` (GLM-4.6 and later); others send calls whole."""


def traits_of(model: str) -> ModelTraits:
    """Traits of a model code, decided by its family prefix so new versions need no table entry."""
    version = model.split("-")[1] if "-" in model else ""  # "4.5v" in "glm-4.5v"
    return ModelTraits(
        thinks=model.startswith(("glm-4.5", "glm-4.6", "glm-4.7", "glm-5")),
        think_tags=model.startswith("glm-z1"),
        vision=version.endswith("v"),
        tool_stream=model.startswith(("glm-4.6", "glm-4.7", "glm-5")),
    )
