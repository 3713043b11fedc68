"""The Files and Batch APIs: a JSONL file uploaded with purpose ``batch`` runs as one batch, its lines answered by the
emulator's own chat engine, its status moving on with time.

A batch is planned whole when it is created: every line is checked and answered at once (as an async task's
answer is), and when each line counts as done, when the batch finalizes and when it completes follow from the
configured durations (``EmulatorConfig.batch_*``). Its state is read off the clock at each request, so nothing
runs in the background: a cancel or an expiry cuts the plan where it stands, and the lines done by then are
what the output and error files hold. Those files appear when the batch ends, as uploads of the same account,
downloadable at ``GET /files/{id}/content`` for ``file_ttl`` seconds (the platform keeps them 30 days).

Files and batches belong to the key that made them (its account): another key's id reads as unknown.
docs/glm-endpoints.md says which of this is documented, seen in captures, or guessed.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .config import EmulatorConfig
from .errors import ApiError, bad_request

BATCH_ENDPOINT = "/v4/chat/completions"
"""The one endpoint a batch may name (the platform's docs also show embeddings and images; not emulated)."""
PURPOSES = ("batch", "file-extract", "code-interpreter", "agent", "voice-clone-input")
"""The purposes the upload endpoint takes."""
CONTENT_PURPOSES = ("batch", "file-extract")
"""Files whose content can be downloaded."""
MAX_BATCH_FILE_BYTES = 100 * 1024 * 1024
MAX_BATCH_FILES = 1000
"""Files of purpose ``batch`` an account may keep at once."""
MAX_BATCH_LINES = 50_000
MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512
LIST_DEFAULT = 20
LIST_MAX = 100

ENDED = frozenset({"completed", "failed", "expired", "cancelled"})


def _file_id() -> str:
    """``yyyyMMdd_<uuid>``, the form of the file ids seen in the SDK's recorded answers."""
    return f"{time.strftime('%Y%m%d')}_{uuid.uuid4()}"


def _batch_id() -> str:
    """``batch_`` and 19 digits, as seen."""
    return f"batch_{time.time_ns() // 1_000_000:013d}{secrets.randbelow(10**6):06d}"


def _compact(value: object) -> str:
    """JSON as the platform writes a file's lines: no spaces, text as it is."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _ms(unix: float) -> int:
    """Batch times are milliseconds (the platform's own answers, as recorded in the SDK's tests)."""
    return int(unix * 1000)


@dataclass
class Upload:
    """A file of the Files API: uploaded, or written by a batch."""

    id: str
    account: str
    filename: str
    purpose: str
    data: bytes
    created_at: float
    """Unix seconds."""
    expires_at: float

    def body(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": int(self.created_at),
            "filename": self.filename,
            "purpose": self.purpose,
        }


def upload(account: str, filename: str, purpose: str, data: bytes, config: EmulatorConfig, held: int) -> Upload:
    """A new upload of `account`, checked as the platform checks it; `held` is how many batch files it keeps now."""
    if purpose not in PURPOSES:
        raise bad_request(f"purpose must be one of {', '.join(PURPOSES)}, got {purpose!r}.")
    if purpose == "batch":
        if not filename.lower().endswith(".jsonl"):
            raise bad_request(f"a file of purpose batch must be a .jsonl file, got {filename!r}.")
        if len(data) > MAX_BATCH_FILE_BYTES:
            raise bad_request(f"a batch file may be at most 100 MB, this one is {len(data):,} bytes.")
        if held >= MAX_BATCH_FILES:
            raise bad_request(f"at most {MAX_BATCH_FILES} batch files may be kept; delete some first.")
    now = time.time()
    return Upload(_file_id(), account, filename, purpose, data, now, now + config.file_ttl)


@dataclass(frozen=True)
class Line:
    """One line of a batch, answered: what the output file or the error file holds for it, and when it is done."""

    custom_id: str
    done_at: float
    """``time.monotonic()`` from which the line counts as done."""
    output: dict[str, Any] | None
    error: dict[str, Any] | None


Answer = Callable[[dict[str, Any]], dict[str, Any]]
"""A line's body answered as ``/chat/completions`` would: the completion, or raises ``ApiError``."""


@dataclass
class Batch:
    """A batch as planned at its creation; its status is read off the clock (`view`)."""

    id: str
    account: str
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, str] | None
    auto_delete_input_file: bool
    created_wall: float
    created_mono: float
    validated_at: float
    """Monotonic: when validation ends (then in_progress, or failed)."""
    lines: list[Line]
    problems: list[dict[str, Any]]
    """What validation found wrong with the file (the batch then fails), as ``errors.data``."""
    finalizing_s: float
    expires_mono: float
    cancelled_mono: float | None = None
    output_file_id: str = ""
    error_file_id: str = ""
    ended: bool = False
    """Its files are written (or it failed): nothing about it changes any more."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _wall(self, mono: float) -> float:
        return self.created_wall + (mono - self.created_mono)

    def _items_end(self) -> float:
        return max((line.done_at for line in self.lines), default=self.validated_at)

    def _timeline(self, now: float) -> tuple[str, float | None]:
        """The status at monotonic `now`, and when lines stop being done (None: not cut)."""
        if self.cancelled_mono is not None:
            ended = now >= self.cancelled_mono + self.finalizing_s
            return ("cancelled" if ended else "cancelling"), self.cancelled_mono
        if now < self.validated_at:
            return ("expired", self.expires_mono) if now >= self.expires_mono else ("validating", None)
        if self.problems:
            return "failed", self.validated_at
        completed_at = self._items_end() + self.finalizing_s
        if now >= self.expires_mono and self.expires_mono < completed_at:
            return "expired", self.expires_mono
        if now < self._items_end():
            return "in_progress", None
        return ("finalizing" if now < completed_at else "completed"), None

    def _done(self, now: float, cut: float | None) -> list[Line]:
        until = now if cut is None else min(now, cut)
        return [line for line in self.lines if line.done_at <= until]

    def view(self, now: float, config: EmulatorConfig) -> tuple[dict[str, Any], list[Upload]]:
        """The batch object at `now`, and the output and error files it writes as it ends (once)."""
        with self._lock:
            status, cut = self._timeline(now)
            written: list[Upload] = []
            if status in ENDED and not self.ended:
                self.ended = True
                written = self._write_files(now, cut, config)
            return self._body(now, status, cut), written

    def cancel(self, now: float) -> None:
        """Cancel a batch that has not ended; ``ApiError`` for one that has."""
        with self._lock:
            status, _ = self._timeline(now)
            if status in ENDED or status == "cancelling":
                raise bad_request(f"batch {self.id} is {status} and cannot be cancelled.")
            self.cancelled_mono = now

    def _write_files(self, now: float, cut: float | None, config: EmulatorConfig) -> list[Upload]:
        done = self._done(now, cut)
        written: list[Upload] = []
        wall = time.time()
        for kind, lines in (
            ("output", [line.output for line in done if line.output is not None]),
            ("error", [line.error for line in done if line.error is not None]),
        ):
            if not lines:
                continue
            data = "".join(_compact(line) + "\n" for line in lines).encode()
            file = Upload(
                _file_id(), self.account, f"{self.id}_{kind}.jsonl", "batch", data, wall, wall + config.file_ttl
            )
            written.append(file)
            if kind == "output":
                self.output_file_id = file.id
            else:
                self.error_file_id = file.id
        return written

    def _body(self, now: float, status: str, cut: float | None) -> dict[str, Any]:
        validated = now >= self.validated_at and not (
            self.cancelled_mono is not None and self.cancelled_mono < self.validated_at
        )
        done = self._done(now, cut)
        failed = sum(1 for line in done if line.error is not None)
        counts = {
            "total": len(self.lines) if validated and not self.problems else 0,
            "completed": len(done) - failed,
            "failed": failed,
        }
        items_end = self._items_end()
        body: dict[str, Any] = {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": _ms(self.created_wall),
            "in_progress_at": _ms(self._wall(self.validated_at)) if validated and not self.problems else None,
            "expires_at": _ms(self._wall(self.expires_mono)),
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": _ms(self._wall(self.cancelled_mono)) if self.cancelled_mono is not None else None,
            "cancelled_at": None,
            "request_counts": counts,
            "metadata": self.metadata,
            "errors": {"object": "list", "data": self.problems} if self.problems and status == "failed" else None,
        }
        if status in ("finalizing", "completed"):
            body["finalizing_at"] = _ms(self._wall(items_end))
        if status == "completed":
            body["completed_at"] = _ms(self._wall(items_end + self.finalizing_s))
        elif status == "failed":
            body["failed_at"] = _ms(self._wall(self.validated_at))
        elif status == "expired":
            body["expired_at"] = _ms(self._wall(self.expires_mono))
        elif status == "cancelled" and self.cancelled_mono is not None:
            body["cancelled_at"] = _ms(self._wall(self.cancelled_mono + self.finalizing_s))
        return body


def create_batch(
    body: object, account: str, input_file: Upload | None, answer: Answer, config: EmulatorConfig
) -> Batch:
    """A new batch for a ``POST /batches`` body: the request checked at once (``ApiError``), the file's lines
    checked and answered now, each done at its time; a file that does not pass makes the batch fail."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    input_file_id = body.get("input_file_id")
    endpoint = body.get("endpoint")
    if not input_file_id or not endpoint:
        raise ApiError(400, "1213", "input_file_id and endpoint are required.")
    if not isinstance(input_file_id, str) or not isinstance(endpoint, str):
        raise bad_request("input_file_id and endpoint must be strings.")
    if endpoint != BATCH_ENDPOINT:
        raise bad_request(f"endpoint must be {BATCH_ENDPOINT}, got {endpoint!r}.")
    window = body.get("completion_window")
    if window is not None and not isinstance(window, str):
        raise bad_request("completion_window must be a string.")
    auto_delete = body.get("auto_delete_input_file", True)
    if not isinstance(auto_delete, bool):
        raise bad_request("auto_delete_input_file must be a boolean.")
    metadata = _metadata(body.get("metadata"))
    if input_file is None or input_file.account != account:
        raise bad_request(f"file not found: {input_file_id}")
    if input_file.purpose != "batch":
        raise bad_request(f"file {input_file_id} was uploaded with purpose {input_file.purpose!r}, not 'batch'.")
    batch_id = _batch_id()
    now_wall, now = time.time(), time.monotonic()
    validated_at = now + config.batch_validating
    requests, problems = _read_lines(input_file.data, endpoint, config)
    lines: list[Line] = []
    if not problems:
        for index, (number, custom_id, request) in enumerate(requests):
            done_at = validated_at + (index + 1) * config.batch_item_seconds
            lines.append(_answered(batch_id, number, custom_id, request, answer, done_at))
    return Batch(
        id=batch_id,
        account=account,
        input_file_id=input_file_id,
        endpoint=endpoint,
        completion_window=window or "24h",
        metadata=metadata,
        auto_delete_input_file=auto_delete,
        created_wall=now_wall,
        created_mono=now,
        validated_at=validated_at,
        lines=lines,
        problems=problems,
        finalizing_s=config.batch_finalizing,
        expires_mono=now + config.batch_expiry,
    )


def _metadata(value: object) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise bad_request("metadata must be an object of strings.")
    if len(value) > MAX_METADATA_PAIRS:
        raise bad_request(f"metadata may have at most {MAX_METADATA_PAIRS} pairs.")
    for key, text in value.items():
        if len(key) > MAX_METADATA_KEY or len(text) > MAX_METADATA_VALUE:
            raise bad_request(
                f"metadata keys may be {MAX_METADATA_KEY} characters long and values {MAX_METADATA_VALUE}."
            )
    return dict(value)


def _read_lines(
    data: bytes, endpoint: str, config: EmulatorConfig
) -> tuple[list[tuple[int, str, dict[str, Any]]], list[dict[str, Any]]]:
    """The file's requests as (line number, custom_id, body), and what is wrong with it (then nothing runs)."""
    problems: list[dict[str, Any]] = []

    def problem(line: int | None, param: str | None, message: str, code: str = "1210") -> None:
        problems.append({"code": code, "line": line, "message": message, "param": param})

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        problem(None, None, "The file is not UTF-8 text.")
        return [], problems
    requests: list[tuple[int, str, dict[str, Any]]] = []
    seen: set[str] = set()
    model: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            problem(number, None, "This line is not valid JSON.")
            continue
        if not isinstance(line, dict):
            problem(number, None, "Each line must be a JSON object.")
            continue
        custom_id = line.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            problem(number, "custom_id", "custom_id is required, a non-empty string.")
            continue
        if custom_id in seen:
            problem(number, "custom_id", f"custom_id {custom_id!r} is used twice; each must be unique.")
            continue
        seen.add(custom_id)
        if line.get("method") != "POST":
            problem(number, "method", "method must be POST.")
        if line.get("url") != endpoint:
            problem(number, "url", f"url must be the batch's endpoint, {endpoint}.")
        request = line.get("body")
        if not isinstance(request, dict):
            problem(number, "body", "body must be a JSON object.")
            continue
        asked = request.get("model")
        if not isinstance(asked, str) or not asked:
            problem(number, "body.model", "body.model is required.", code="1213")
            continue
        if asked not in config.models:
            problem(number, "body.model", f"Model not found: {asked}", code="1211")
        if model is not None and asked != model:
            problem(number, "body.model", f"every line must ask the same model: {model}, not {asked}.")
        model = model or asked
        requests.append((number, custom_id, request))
    if not requests and not problems:
        problem(None, None, "The file holds no request.")
    if len(requests) > MAX_BATCH_LINES:
        problem(None, None, f"A batch file may hold at most {MAX_BATCH_LINES:,} requests, this one {len(requests):,}.")
    return requests, problems


def _answered(
    batch_id: str, number: int, custom_id: str, request: dict[str, Any], answer: Answer, done_at: float
) -> Line:
    """A line answered: its completion in the output file, or its error in the error file."""
    request_id = request.get("request_id") if isinstance(request.get("request_id"), str) else f"{number}-{custom_id}"
    try:
        completion = answer({**request, "request_id": request_id, "stream": False})
    except ApiError as error:
        response = {"status_code": error.status, "body": error.body(request_id)}
        return Line(custom_id, done_at, None, {"response": response, "custom_id": custom_id, "id": batch_id})
    response = {"status_code": 200, "body": completion}
    return Line(custom_id, done_at, {"response": response, "custom_id": custom_id, "id": batch_id}, None)


def page(objects: list[dict[str, Any]], after: str | None, limit: object) -> tuple[list[dict[str, Any]], bool]:
    """A page of `objects` (newest first) after the one whose id is `after`, and whether more follow."""
    size = LIST_DEFAULT if limit is None else limit
    if not isinstance(size, int) or not 1 <= size <= LIST_MAX:
        raise bad_request(f"limit must be between 1 and {LIST_MAX}, got {limit!r}.")
    start = 0
    if after:
        ids = [o["id"] for o in objects]
        if after not in ids:
            raise bad_request(f"after: no object with id {after!r}.")
        start = ids.index(after) + 1
    chosen = objects[start : start + size]
    return chosen, start + size < len(objects)
