"""Documents and recordings named in `files`, made text through the platform: its file parser and its speech-to-text.

`prepare` runs this only for a call whose files include some: no other call meets any of it. A file's text is
looked up first by its content (`jobs.extracts`, the caller's own), so a document or recording read before costs
nothing again, and what the platform makes of a new one is kept there. Documents not read before are all
uploaded to the file parser (its Lite tool) first, then their tasks awaited, so several take about as long as the
slowest; a recording's parts go to speech-to-text one after the other, each with what was heard before it as its
`prompt`. Every request that reaches the platform is recorded in `usage` (tool `files`, the parser's tool or the
speech model as the model), as it is made.

The texts then go into the message in the order the files were named, each within what the call has room for
(`Room`: what the text files left of GLM_FILES_MAX_CHARS, of GLM_MAX_PROMPT_CHARS and of the model's context
window). A text longer than that is cut, and the result says which part was sent; a file for which no room is
left at all is refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import PurePath

import anyio

from glm_mcp.errors import ArgumentError, DocumentNotRead, RegistryUnavailable
from glm_mcp.glm.documents import ASR_MODEL, ParserTool
from glm_mcp.jobs.extracts import Extract
from glm_mcp.server.state import AppState
from glm_mcp.tools import accounting
from glm_mcp.tools.answer import SentFile
from glm_mcp.tools.workspace.files import FIELD, Attachments
from glm_mcp.tools.workspace.formats import ASR_MAX_SECONDS, Document, Recording, content_hash

__all__ = ["PARSER", "PARSE_WAIT_SECONDS", "USAGE_TOOL", "Room", "convert"]

logger = logging.getLogger(__name__)

PARSER: ParserTool = "lite"
"""The file parser's tool: Lite reads every format sent here (the others cost more and read fewer or the same)."""
PARSE_WAIT_SECONDS = 300.0
"""How long a call waits for the file parser; past it the call fails, and calling again starts a new parse."""
USAGE_TOOL = "files"
"""The tool the file parser's and speech-to-text's requests are recorded under in `usage`."""
PROMPT_CHARS = 8_000
"""The most of what was heard before that goes with a recording's next part (the platform's recommended bound)."""
_FIRST_POLL_S, _GROWTH, _MAX_POLL_S = 0.25, 1.6, 5.0


@dataclass(frozen=True, slots=True)
class Room:
    """The characters of documents' and recordings' text the call can still send, and what bounds it."""

    chars: int
    bound: str
    """What the text would pass beyond `chars`, for the note: `GLM_FILES_MAX_CHARS`, the model's context window."""


@dataclass(frozen=True, slots=True)
class _Text:
    text: str
    read_by: str


async def convert(app: AppState, attachments: Attachments, room: Room) -> None:
    """Fill the blocks of `attachments`' documents and recordings with their text, and their entries in the list
    of files sent with what was sent; raises before anything of the chat itself is sent."""
    texts = await _texts(app, attachments.conversions)
    left = room.chars
    for item, found in zip(attachments.conversions, texts, strict=True):
        text = found.text
        if left <= 0 and text:
            raise ArgumentError(
                FIELD,
                f"no room is left for the text of {item.shown} ({len(text):,} characters): the files before it use "
                f"all of {room.bound}. Send it in a call of its own, or with fewer files.",
            )
        sent = text[: max(left, 0)]
        left -= len(sent)
        part = None
        if len(sent) < len(text):
            part = f"characters 1 to {len(sent):,} of {len(text):,}; the rest would pass {room.bound}"
        attachments.blocks[item.block] = _block(item, sent, part)
        kind = "document" if isinstance(item, Document) else "audio"
        attachments.sent[item.entry] = SentFile(
            path=item.shown,
            kind=kind,
            bytes=attachments.sent[item.entry].bytes,
            chars=len(sent),
            read_by=found.read_by,
            sent_part=part,
        )


def _block(item: Document | Recording, text: str, part: str | None) -> str:
    """The text as the model reads it: delimited like a text file's, saying what it was made from."""
    if isinstance(item, Document):
        opening = f'<file path="{item.shown}" document="{item.file_type}">'
    else:
        opening = f'<file path="{item.shown}" transcript="{item.seconds:.1f} s">'
    note = f"\n[Only part of it is here: {part}.]" if part else ""
    return f"{opening}\n{text}{note}\n</file>"


async def _texts(app: AppState, conversions: list[Document | Recording]) -> list[_Text]:
    """Each file's text: kept from before, else made now (documents' parses started together, then awaited)."""
    found: dict[int, _Text] = {}
    started: list[tuple[Document, str, str]] = []
    source = f"file-parser:{PARSER}"
    for item in conversions:
        if not isinstance(item, Document):
            continue
        digest = content_hash(item.data)
        kept = await _kept(app, digest, source)
        if kept is not None:
            found[item.block] = _Text(kept, f"file parser ({PARSER}), read before")
            continue
        name = PurePath(item.shown).name
        task = await app.glm.create_parse(item.data, filename=name, file_type=item.file_type, tool=PARSER)
        await accounting.record(app, USAGE_TOOL, f"file-parser-{PARSER}")
        started.append((item, digest, task.task_id))
    for item, digest, task_id in started:
        text = await _parsed(app, item, task_id)
        await _keep(app, Extract(digest, source, text))
        found[item.block] = _Text(text, f"file parser ({PARSER})")
    for item in conversions:
        if isinstance(item, Recording):
            found[item.block] = await _heard(app, item)
    return [found[item.block] for item in conversions]


async def _parsed(app: AppState, document: Document, task_id: str) -> str:
    """The text of a parse, once its task succeeded; `DocumentNotRead` when it failed or took too long."""
    interval = _FIRST_POLL_S
    with anyio.move_on_after(PARSE_WAIT_SECONDS):
        while True:
            result = await app.glm.parse_result(task_id)
            if result.status == "succeeded":
                return result.content or ""
            if result.status == "failed":
                raise DocumentNotRead(document.shown, task_id, result.message or "the parse failed")
            await anyio.sleep(interval)
            interval = min(interval * _GROWTH, _MAX_POLL_S)
    raise DocumentNotRead(
        document.shown, task_id, f"it had not finished after {PARSE_WAIT_SECONDS:g} s", timed_out=True
    )


async def _heard(app: AppState, recording: Recording) -> _Text:
    """A recording's transcript: kept from before, else its parts sent one after the other."""
    kept = await _kept(app, recording.sha256, ASR_MODEL)
    if kept is not None:
        return _Text(kept, f"speech-to-text ({ASR_MODEL}), heard before")
    path = PurePath(recording.shown)
    heard: list[str] = []
    for number, part in enumerate(recording.parts, 1):
        name = path.name if len(recording.parts) == 1 else f"{path.stem}-{number}{path.suffix}"
        before = " ".join(heard)[-PROMPT_CHARS:] or None
        answer = await app.glm.transcribe(part, filename=name, media_type=recording.media_type, prompt=before)
        await accounting.record(app, USAGE_TOOL, ASR_MODEL)
        heard.append(answer.text.strip())
    text = " ".join(words for words in heard if words)
    await _keep(app, Extract(recording.sha256, ASR_MODEL, text))
    parts = len(recording.parts)
    split = f", in {parts} parts of at most {ASR_MAX_SECONDS:g} s" if parts > 1 else ""
    return _Text(text, f"speech-to-text ({ASR_MODEL}{split})")


async def _kept(app: AppState, digest: str, source: str) -> str | None:
    """The text kept for this content and source, if any; a registry that cannot say is a miss, not a failure."""
    try:
        extract = await app.extracts.get(principal=app.principal, sha256=digest, source=source)
    except RegistryUnavailable as exc:
        logger.warning("a kept extract could not be looked up: %s %s", exc, exc.fix)
        return None
    return extract.text if extract is not None else None


async def _keep(app: AppState, extract: Extract) -> None:
    try:
        await app.extracts.put(extract, principal=app.principal)
    except RegistryUnavailable as exc:
        logger.warning("an extract could not be kept (it will be read again next time): %s %s", exc, exc.fix)
