"""What the server must know about GLM models before it sends anything: how much they read, whether they see.

One table for everything that decides on a model's limits (the context-window trimming of
conversations, the refusal of images for a model that cannot see), so that adding a model is one
line here. Codes not listed fall back on their family (the longest listed prefix), then on
`DEFAULT_CONTEXT_TOKENS`.
"""

from __future__ import annotations

CONTEXT_WINDOWS: dict[str, int] = {
    "glm-5": 200_000,
    "glm-4.7": 200_000,
    "glm-4.6v": 128_000,
    "glm-4.6": 200_000,
    "glm-4.5v": 64_000,
    "glm-4.5": 128_000,
    "glm-4-long": 1_000_000,
    "glm-4-airx": 8_000,
    "glm-4v-flash": 8_000,
    "glm-4v": 8_000,
    "glm-4": 128_000,
    "glm-z1": 128_000,
}
"""Prompt plus answer, in tokens, by model code or family prefix (the platform's model pages)."""
DEFAULT_CONTEXT_TOKENS = 128_000

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
    matches = [prefix for prefix in CONTEXT_WINDOWS if model.startswith(prefix)]
    return CONTEXT_WINDOWS[max(matches, key=len)] if matches else DEFAULT_CONTEXT_TOKENS


def sees_images(model: str) -> bool:
    """Whether `model` takes image parts: the vision models' version ends in "v" (glm-4.5v, glm-4v-flash)."""
    parts = model.split("-")
    return len(parts) > 1 and parts[1].endswith("v")


TOOL_STREAM_FAMILIES = ("glm-4.6", "glm-4.7", "glm-5")
"""The models that stream function-call arguments in pieces when asked (`tool_stream`); the others send calls whole."""


def streams_tool_calls(model: str) -> bool:
    """Whether `model` takes `tool_stream` (GLM-4.6 and later)."""
    return model.startswith(TOOL_STREAM_FAMILIES)


def estimated_tokens(chars: int) -> int:
    """A generous estimate of the tokens of `chars` characters of text."""
    return -(-chars // CHARS_PER_TOKEN)
