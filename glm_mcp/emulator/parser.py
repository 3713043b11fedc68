"""The file parser: ``POST /files/parser/create`` (a task), ``GET /files/parser/result/{task_id}/{format_type}``,
and ``POST /files/parser/sync`` (Prime's one-request form).

Requests are multipart forms: ``file``, ``tool_type`` (``lite``, ``expert``, ``prime``; ``prime-sync`` for the
sync form) and ``file_type``, checked against what each tool takes and its size limit. The text is really
extracted (``documents.py``) when the task is created, and revealed after ``async_delay``; a file that is not
what its type says makes a task that fails. See docs/glm-endpoints.md for where each rule comes from.
"""

from __future__ import annotations

import io
import secrets
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .documents import Unreadable, extract
from .errors import ApiError, bad_request
from .forms import Form

LITE_TYPES = frozenset({"PDF", "DOCX", "DOC", "XLS", "XLSX", "PPT", "PPTX", "PNG", "JPG", "JPEG", "CSV", "TXT", "MD"})
PRIME_TYPES = LITE_TYPES | {
    "HTML", "EPUB", "BMP", "GIF", "WEBP", "HEIC", "EPS", "ICNS", "IM", "PCX", "PPM", "TIFF", "XBM", "HEIF", "JP2",
}  # fmt: skip
TOOL_TYPES: dict[str, frozenset[str]] = {
    "lite": LITE_TYPES,
    "expert": frozenset({"PDF"}),
    "prime": PRIME_TYPES,
    "prime-sync": PRIME_TYPES | {"WPS"},
}
"""What each parsing tool takes (the API reference's ``file_type`` description)."""
MB = 1024 * 1024
_SMALL_TYPES = frozenset({"XLS", "XLSX", "CSV", "TXT", "MD"})
_LARGE_TYPES = frozenset({"PDF", "DOC", "DOCX", "PPT", "PPTX", "WPS"})


def size_limit(tool_type: str, file_type: str) -> int:
    """The largest file a tool takes: Lite 50 MB, Expert 100 MB, Prime 100 MB for office documents and PDFs,
    10 MB for spreadsheets and text, 20 MB for the rest (the guides' tables, as quoted by their readers)."""
    if tool_type == "lite":
        return 50 * MB
    if tool_type == "expert" or file_type in _LARGE_TYPES:
        return 100 * MB
    return 10 * MB if file_type in _SMALL_TYPES else 20 * MB


@dataclass(frozen=True)
class ParseRequest:
    tool_type: str
    file_type: str
    data: bytes


def parse_request(form: Form | None, *, sync: bool) -> ParseRequest:
    """Check a parser form: the file, a tool its endpoint serves, a type that tool takes, within its size."""
    if form is None:
        raise bad_request("The request must be a multipart/form-data form with file, tool_type and file_type.")
    upload = form.files.get("file")
    if upload is None:
        raise ApiError(400, "1213", "The file parameter was not received.")
    tool_type = form.fields.get("tool_type", "").strip()
    tools = ("prime-sync",) if sync else ("lite", "expert", "prime")
    if tool_type not in tools:
        raise bad_request(f"tool_type must be one of {', '.join(tools)}; got {tool_type!r}.")
    file_type = form.fields.get("file_type", "").strip().upper()
    if file_type not in TOOL_TYPES[tool_type]:
        taken = ", ".join(sorted(TOOL_TYPES[tool_type]))
        raise bad_request(f"file_type {file_type or '(none)'} is not supported by {tool_type}: it takes {taken}.")
    limit = size_limit(tool_type, file_type)
    if len(upload.data) > limit:
        raise bad_request(f"The file is {len(upload.data):,} bytes; {tool_type} takes {file_type} files of at most "
                          f"{limit // MB} MB.")  # fmt: skip
    return ParseRequest(tool_type, file_type, upload.data)


Store = Callable[[bytes, str, str], str]
"""Keeps a file for download: (data, media type, suffix) -> its URL."""


def parse_outcome(request: ParseRequest, task_id: str, store: Store) -> dict[str, Any]:
    """The finished task's answer, both forms in one (``result_answer`` picks one)."""
    try:
        extracted = extract(request.data, request.file_type)
    except Unreadable as exc:
        return {"status": "failed", "message": f"Parsing failed: {exc}.", "task_id": task_id}
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as result:
        result.writestr("result.md", extracted.text)
    url = store(archive.getvalue(), "application/zip", "zip")
    return {
        "status": "succeeded",
        "message": "Result fetched successfully",
        "content": extracted.text,
        "task_id": task_id,
        "parsing_result_url": url,
    }


def new_task_id() -> str:
    return f"{time.strftime('%Y%m%d%H%M%S')}{secrets.token_hex(12)}"


def created(task_id: str) -> dict[str, Any]:
    return {"message": "Task created successfully", "success": True, "task_id": task_id}


def processing(task_id: str) -> dict[str, Any]:
    return {"status": "processing", "message": "The task is being processed", "task_id": task_id}


FORMAT_TYPES = frozenset({"text", "download_link"})


def result_answer(outcome: dict[str, Any], format_type: str) -> dict[str, Any]:
    """A task's answer for ``format_type``: ``content`` for ``text``, ``parsing_result_url`` for ``download_link``."""
    if format_type not in FORMAT_TYPES:
        raise bad_request(f"format_type must be text or download_link; got {format_type!r}.")
    left_out = "parsing_result_url" if format_type == "text" else "content"
    return {key: value for key, value in outcome.items() if key != left_out}
