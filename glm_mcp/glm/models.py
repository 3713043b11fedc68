"""What the server must know about GLM models before it sends anything: how much they read, whether they see.

One table (`MODELS`) for everything that decides on a model's limits (the context-window trimming of
conversations, the refusal of images for a model that cannot see), so that adding a model is one
line here. Codes not listed fall back on their family (the longest listed prefix), then on
`DEFAULT_CONTEXT_TOKENS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

ModelKind = Literal["chat", "image", "video"]


@dataclass(frozen=True, slots=True)
class ModelTraits:
    """What one model (or family) can do, as the platform's model pages say."""

    kind: ModelKind = "chat"
    context_tokens: int | None = None
    """Prompt plus answer, in tokens (chat models)."""
    max_output_tokens: int | None = None
    vision: bool = False
    """Reads images (and, for the vision models, video)."""
    reasoning: bool = False
    """Thinks before answering (`thinking`, or glm-z1's `<think>`)."""
    tool_stream: bool = False
    """Streams function-call arguments in pieces when asked (`tool_stream`)."""


_K = 1024
MODELS: dict[str, ModelTraits] = {
    "glm-5": ModelTraits(context_tokens=200 * _K, max_output_tokens=128 * _K, reasoning=True, tool_stream=True),
    "glm-4.7": ModelTraits(context_tokens=200 * _K, max_output_tokens=128 * _K, reasoning=True, tool_stream=True),
    "glm-4.6v": ModelTraits(context_tokens=128 * _K, max_output_tokens=32 * _K, vision=True, reasoning=True),
    "glm-4.6": ModelTraits(context_tokens=200 * _K, max_output_tokens=128 * _K, reasoning=True, tool_stream=True),
    "glm-4.5v": ModelTraits(context_tokens=64 * _K, max_output_tokens=16 * _K, vision=True, reasoning=True),
    "glm-4.5": ModelTraits(context_tokens=128 * _K, max_output_tokens=96 * _K, reasoning=True),
    "glm-4-long": ModelTraits(context_tokens=1000 * _K, max_output_tokens=4095),
    "glm-4-airx": ModelTraits(context_tokens=8 * _K, max_output_tokens=4095),
    "glm-4v-flash": ModelTraits(context_tokens=16 * _K, max_output_tokens=1 * _K, vision=True),
    "glm-4v": ModelTraits(context_tokens=8 * _K, max_output_tokens=1 * _K, vision=True),
    "glm-4": ModelTraits(context_tokens=128 * _K, max_output_tokens=4095),
    "glm-z1-airx": ModelTraits(context_tokens=32 * _K, max_output_tokens=30 * _K, reasoning=True),
    "glm-z1": ModelTraits(context_tokens=128 * _K, max_output_tokens=32 * _K, reasoning=True),
    "cogview-4": ModelTraits(kind="image"),
    "cogview-3": ModelTraits(kind="image"),
    "glm-image": ModelTraits(kind="image"),
    "cogvideox": ModelTraits(kind="video"),
    "vidu": ModelTraits(kind="video"),
}
"""Every model the server knows, by code or family prefix (the longest listed prefix wins): the one table the
context-window trimming, the refusal of images for a blind model, `tool_stream` and `list_models` read. Figures
from the platform's model pages (docs/glm-endpoints.md); a code that matches nothing is unknown."""
DEFAULT_CONTEXT_TOKENS = 128_000
MEDIA_MODELS: dict[ModelKind, tuple[str, ...]] = {
    "image": ("cogview-4", "cogview-3-flash", "glm-image"),
    "video": ("cogvideox-3", "cogvideox-2", "cogvideox-flash", "viduq1-text", "vidu2-image"),
}
"""The image and video model codes the server knows (docs/glm-endpoints.md), for `list_models` to name when the
platform's model list has none of that kind (it lists chat models)."""


def traits(model: str) -> ModelTraits | None:
    """What `model` can do: its own entry, else its family's (the longest listed prefix), else None."""
    matches = [prefix for prefix in MODELS if model.startswith(prefix)]
    return MODELS[max(matches, key=len)] if matches else None


IMAGE_MAX_BYTES = 5 * 1024 * 1024
"""The platform's limit for one image (its vision model pages: "image size up to 5 MB")."""
IMAGE_TYPES: dict[str, str] = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
}
"""The image files a vision model takes, by extension, with their media type."""

CHARS_PER_TOKEN = 3
"""How many characters of text one token is taken to cover when estimating a prompt: fewer than the
platform's usual ~4 for English, so that code and Chinese (denser) are not underestimated."""
MESSAGE_OVERHEAD_TOKENS = 4
IMAGE_TOKENS = 1_600
"""What one image is taken to cost in a prompt estimate (the platform bills images by their pixels)."""


def context_window(model: str) -> int:
    """The context window of `model`, in tokens: its own entry, else its family's, else the default."""
    known = traits(model)
    return known.context_tokens if known is not None and known.context_tokens else DEFAULT_CONTEXT_TOKENS


def sees_images(model: str) -> bool:
    """Whether `model` takes image parts: the table's word, else by name (a vision model's version ends in "v")."""
    known = traits(model)
    if known is not None:
        return known.vision
    parts = model.split("-")
    return len(parts) > 1 and parts[1].endswith("v")


def streams_tool_calls(model: str) -> bool:
    """Whether `model` streams function-call arguments in pieces with `tool_stream` (GLM-4.6 and later)."""
    known = traits(model)
    return known is not None and known.tool_stream


@dataclass(frozen=True, slots=True)
class Price:
    """What a million tokens cost, read and written."""

    input: float
    output: float


@dataclass(frozen=True, slots=True)
class CallPrice:
    """What one call costs, whatever its tokens: a search, an image, a video (the platform bills these per call)."""

    each: float


PRICES: dict[str, Price | CallPrice] = {
    "glm-5": Price(1.0, 3.2),
    "glm-4.7-flash": Price(0.0, 0.0),
    "glm-4.7": Price(0.6, 2.2),
    "glm-4.6v-flash": Price(0.0, 0.0),
    "glm-4.6v": Price(0.3, 0.9),
    "glm-4.6": Price(0.6, 2.2),
    "glm-4.5v": Price(0.6, 1.8),
    "glm-4.5-flash": Price(0.0, 0.0),
    "glm-4.5-airx": Price(1.1, 4.5),
    "glm-4.5-air": Price(0.2, 1.1),
    "glm-4.5-x": Price(2.2, 8.9),
    "glm-4.5": Price(0.6, 2.2),
    "glm-4-flash": Price(0.0, 0.0),
    "glm-4v-flash": Price(0.0, 0.0),
    "glm-z1-flash": Price(0.0, 0.0),
    "glm-4": Price(0.1, 0.1),
    "cogview-4": CallPrice(0.01),
    "glm-image": CallPrice(0.015),
    "cogvideox-3": CallPrice(0.2),
    "viduq1": CallPrice(0.4),
    "vidu2-image": CallPrice(0.2),
    "vidu2-start-end": CallPrice(0.2),
    "vidu2-reference": CallPrice(0.4),
    "search": CallPrice(0.01),
}
"""Estimated USD by model code or family prefix (the longest wins): per million tokens (input / output) for chat
models, per call for what the platform bills per call (an image, a video, a web search: `web_search` records the
engine, `search_std`, … as its model). The per-call figures are the platform's price page (docs.z.ai, "Pricing");
docs/usage.md names the source of each and what is left unpriced (the page reader, cogview-3-flash,
cogvideox-flash, cogvideox-2: the page prices none of them). An estimate, not a bill; GLM_PRICES overrides entries."""


def parse_prices(text: str) -> dict[str, Price | CallPrice]:
    """`model=input/output` (per million tokens) or `model=price` (per call), comma-separated, as a price table;
    ValueError naming the entry that is wrong."""
    table: dict[str, Price | CallPrice] = {}
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        model, _, figures = entry.partition("=")
        read, slash, written = figures.partition("/")
        try:
            price: Price | CallPrice = Price(float(read), float(written)) if slash else CallPrice(float(read))
        except ValueError:
            raise ValueError(f"has an entry that is not model=input/output or model=price: {entry!r}") from None
        figures_given = (price.input, price.output) if isinstance(price, Price) else (price.each,)
        if not model.strip() or not all(math.isfinite(figure) and figure >= 0 for figure in figures_given):
            raise ValueError(f"has an entry that is not model=input/output or model=price: {entry!r}")
        table[model.strip()] = price
    return table


BATCH_PRICED = "@batch"
"""The suffix of a model's tokens spent in a platform batch (`glm-4.6@batch`), as usage records them."""
BATCH_DISCOUNT = 0.5
"""A batch's price beside the same model's chat: "50% of the standard API" (the platform's batch guide, which
points at its price page; docs/usage.md)."""


def price_of(model: str, table: dict[str, Price | CallPrice]) -> Price | CallPrice | None:
    """The price of `model` in `table`: its own entry, else its family's (the longest prefix), else None.

    Tokens spent in a batch (`<model>@batch`) cost an entry of their own when the table has one (GLM_PRICES may
    set `glm-4.6@batch=…`), else half of the model's."""
    matches = [prefix for prefix in table if model.startswith(prefix)]
    if model.endswith(BATCH_PRICED) and model not in table:
        chat = price_of(model.removesuffix(BATCH_PRICED), table)
        return Price(chat.input * BATCH_DISCOUNT, chat.output * BATCH_DISCOUNT) if isinstance(chat, Price) else None
    return table[max(matches, key=len)] if matches else None


def estimated_tokens(chars: int) -> int:
    """A generous estimate of the tokens of `chars` characters of text."""
    return -(-chars // CHARS_PER_TOKEN)
