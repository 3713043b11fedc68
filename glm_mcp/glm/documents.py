"""The wire shapes of the platform's file parser and speech-to-text (docs/glm-endpoints.md), and their multipart
bodies.

Both take a file as `multipart/form-data`: `form` encodes one with httpx2's own encoder, so the body and its
boundary come from the library that sends JSON bodies too.
"""

from __future__ import annotations

from typing import Literal

import httpx2
from pydantic import BaseModel, ConfigDict

__all__ = [
    "ASR_MODEL",
    "ParseStatus",
    "ParserResult",
    "ParserTask",
    "ParserTool",
    "Transcription",
    "form",
]

ParserTool = Literal["lite", "expert", "prime"]
ParseStatus = Literal["processing", "succeeded", "failed"]
ASR_MODEL = "glm-asr-2512"
"""The speech-to-text model the reference names (`glm-asr` is its earlier code)."""


class _Lenient(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="allow")  # built on first use, like the wire types


class ParserTask(_Lenient):
    """`POST /files/parser/create`'s answer: the task to ask for the result of."""

    task_id: str
    message: str = ""
    success: bool = True


class ParserResult(_Lenient):
    """`GET /files/parser/result/{task_id}/text`'s answer: the state of the task, and its text once it succeeded."""

    status: ParseStatus
    message: str = ""
    task_id: str = ""
    content: str | None = None
    parsing_result_url: str | None = None


class Transcription(_Lenient):
    """`POST /audio/transcriptions`'s answer (not streamed): the whole text heard."""

    text: str
    id: str | None = None
    created: int | None = None
    request_id: str | None = None
    model: str | None = None


def form(fields: dict[str, str], filename: str, data: bytes, media_type: str) -> tuple[bytes, str]:
    """A `multipart/form-data` body of `fields` and one file part named `file`, and its Content-Type."""
    request = httpx2.Request("POST", "http://form.invalid/", data=fields, files={"file": (filename, data, media_type)})
    return request.read(), request.headers["content-type"]
