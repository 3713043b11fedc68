"""Multipart request bodies (``multipart/form-data``), as the platform's upload endpoints take them.

The file parser and speech-to-text take a file and a few text fields in one form. A form is read whole
before the endpoint's handler runs (handlers are plain functions of the request), into a ``Form``: its
text fields and its files' bytes. What the exchange records of it is ``summary()``: the fields, and each
file's name and size, not its bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request

from .errors import bad_request

MAX_FIELD_BYTES = 64 * 1024 * 1024
"""Largest text field (a base64 audio file of 25 MB is some 34 MB)."""
MAX_PARTS = 32


@dataclass(frozen=True)
class Upload:
    """A file part: the name the client gave it, its declared media type, its bytes."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, Upload] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """What an exchange records: the text fields as sent, each file as its name and size."""
        files = {name: {"filename": up.filename, "bytes": len(up.data)} for name, up in self.files.items()}
        return {**self.fields, **files}


def is_form(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith("multipart/form-data")


async def read_form(request: Request) -> Form:
    """The request's form, read whole; a body that is not one is the platform's 400 / 1210."""
    try:
        async with request.form(max_files=MAX_PARTS, max_fields=MAX_PARTS, max_part_size=MAX_FIELD_BYTES) as form:
            fields: dict[str, str] = {}
            files: dict[str, Upload] = {}
            for name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    data = await value.read()
                    files[name] = Upload(value.filename or "", value.content_type or "", data)
                else:
                    fields[name] = value
    except Exception as exc:  # starlette's MultiPartException, or an HTTPException wrapping it
        raise bad_request(f"The multipart body could not be read: {exc}") from None
    return Form(fields, files)
