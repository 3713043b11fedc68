"""Any file an agent points at: documents become text through the platform's file parser, recordings through its
speech-to-text, each read once per content (the registry keeps what it was read as, the caller's own), the cost
recorded in `usage`; a long WAV split into the parts the platform takes; a document larger than the call's room
cut and said so; what the platform cannot read refused by name, before anything is sent.

Real files made by rigs/documents.py go through `files` in `chat`, against the emulator, which reads them for real
and counts every call (its exchanges): in process here, over stdio and HTTP and by an outside client in
tests/test_documents_transports.py.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from glm_mcp.app import JOBS_FILE, create_server
from glm_mcp.emulator import Emulator
from rigs import documents
from tests.conftest import upstream_calls
from tests.test_stopping import wait_for
from tests.test_tools import failed, ok
from tests.test_workspace import in_roots, sent_text

pytestmark = pytest.mark.anyio

PDF_PAGES = [["Quarterly report", "Revenue rose 12% to 4.2M."], ["Costs fell in every region."]]
WORDS: dict[float, str] = {2: "welcome to the meeting", 33: "second part speaks", 62: "closing remarks"}
"""Said at 2 s, 33 s and 62 s of a 65 s recording: one in each of the three parts it is split into."""


@pytest.fixture
def papers(tmp_path: Path) -> Path:
    """A folder of real documents and recordings, and some files nothing reads."""
    root = tmp_path / "papers"
    root.mkdir()
    (root / "report.pdf").write_bytes(documents.pdf(PDF_PAGES))
    (root / "letter.docx").write_bytes(documents.docx(["Dear team,", "The launch moves to May."]))
    (root / "budget.xlsx").write_bytes(documents.xlsx({"Budget": [["item", "cost"], ["tea", "3"]]}))
    (root / "deck.pptx").write_bytes(documents.pptx([["Roadmap", "Q3: ship it"]]))
    (root / "meeting.wav").write_bytes(documents.wav(65, WORDS))
    (root / "memo.mp3").write_bytes(documents.mp3(12, "call me back"))
    (root / "notes.txt").write_text("plain notes\n")
    return root


def calls(emulator: Emulator, path: str) -> int:
    return len(upstream_calls(emulator, path))


def usage_rows(data_dir: Path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(data_dir / JOBS_FILE) as db:
        return db.execute("SELECT tool, model, calls FROM usage WHERE tool = 'files' ORDER BY model").fetchall()


def entry(out: dict[str, Any], path: str) -> dict[str, Any]:
    return next(f for f in out["files"] if f["path"] == path)


async def test_documents_and_recordings_become_text_once_per_content(
    emulator: Emulator, data_dir: Path, papers: Path
) -> None:
    named = ["report.pdf", "letter.docx", "budget.xlsx", "deck.pptx", "meeting.wav", "memo.mp3", "notes.txt"]
    async with Client(create_server(in_roots(emulator, data_dir, papers))) as client:
        out = ok(await client.call_tool("chat", {"prompt": "Summarise these.", "files": named}))
        text = sent_text(emulator)
        assert '<file path="report.pdf" document="PDF">\nQuarterly report\nRevenue rose 12% to 4.2M.' in text
        assert "Costs fell in every region." in text
        assert '<file path="letter.docx" document="DOCX">\nDear team,\nThe launch moves to May.\n</file>' in text
        assert "Budget\nitem\tcost\ntea\t3" in text and "Roadmap\nQ3: ship it" in text
        assert '<file path="meeting.wav" transcript="65.0 s">\n' + " ".join(WORDS.values()) + "\n</file>" in text
        assert '<file path="memo.mp3" transcript="12.0 s">\ncall me back\n</file>' in text
        order = [text.index(f'<file path="{name}"') for name in ("report.pdf", "letter.docx", "memo.mp3", "notes.txt")]
        assert order == sorted(order)
        assert calls(emulator, "/files/parser/create") == 4
        parts = upstream_calls(emulator, "/audio/transcriptions")
        names = [e.body["file"]["filename"] for e in parts]
        assert names == ["meeting-1.wav", "meeting-2.wav", "meeting-3.wav", "memo.mp3"]
        assert all(e.status == 200 for e in parts)  # each part within the platform's 30 s and 25 MB
        assert parts[1].body["prompt"] == "welcome to the meeting"  # what was heard before goes with the next part
        pdf = entry(out, "report.pdf")
        assert (pdf["kind"], pdf["read_by"]) == ("document", "file parser (lite)")
        assert pdf["bytes"] == (papers / "report.pdf").stat().st_size
        assert "sent_part" not in pdf and pdf["chars"] == len("\n\n".join("\n".join(page) for page in PDF_PAGES))
        wav = entry(out, "meeting.wav")
        assert wav["kind"] == "audio" and wav["read_by"] == "speech-to-text (glm-asr-2512, in 3 parts of at most 30 s)"
        await wait_for(lambda: len(usage_rows(data_dir)) == 8)  # written behind the answer
        assert usage_rows(data_dir) == [("files", "file-parser-lite", 1)] * 4 + [("files", "glm-asr-2512", 1)] * 4

        emulator.state.clear()
        again = ok(await client.call_tool("chat", {"prompt": "Once more.", "files": named}))
    assert calls(emulator, "/files/parser/create") == 0 and calls(emulator, "/files/parser/result") == 0
    assert calls(emulator, "/audio/transcriptions") == 0  # read before: nothing paid twice
    assert " ".join(WORDS.values()) in sent_text(emulator) and "The launch moves to May." in sent_text(emulator)
    assert entry(again, "report.pdf")["read_by"] == "file parser (lite), read before"
    assert entry(again, "memo.mp3")["read_by"] == "speech-to-text (glm-asr-2512), heard before"
    assert len(usage_rows(data_dir)) == 8


async def test_a_changed_document_is_read_again(emulator: Emulator, data_dir: Path, papers: Path) -> None:
    async with Client(create_server(in_roots(emulator, data_dir, papers))) as client:
        ok(await client.call_tool("chat", {"prompt": "Read.", "files": ["letter.docx"]}))
        (papers / "letter.docx").write_bytes(documents.docx(["Dear team,", "The launch moves to June."]))
        ok(await client.call_tool("chat", {"prompt": "Read.", "files": ["letter.docx"]}))
    assert calls(emulator, "/files/parser/create") == 2 and "moves to June." in sent_text(emulator)


async def test_a_document_larger_than_the_room_is_cut_and_the_result_says_which_part(
    emulator: Emulator, data_dir: Path, papers: Path
) -> None:
    paragraphs = [f"Paragraph {n}: " + "words " * 40 for n in range(60)]  # some 15,000 characters
    (papers / "long.docx").write_bytes(documents.docx(paragraphs))
    whole = "\n".join(paragraphs).strip()
    settings = in_roots(emulator, data_dir, papers, GLM_FILES_MAX_CHARS="5000")
    async with Client(create_server(settings)) as client:
        out = ok(await client.call_tool("chat", {"prompt": "Read.", "files": ["notes.txt", "long.docx"]}))
        cut = entry(out, "long.docx")
        sent = cut["chars"]
        assert sent < 5000 - len("plain notes\n") and cut["sent_part"] == (
            f"characters 1 to {sent:,} of {len(whole):,}; the rest would pass GLM_FILES_MAX_CHARS"
        )
        assert whole[:sent] + "\n[Only part of it is here: " in sent_text(emulator)
        assert cut["read_by"] == "file parser (lite)"
    (papers / "longer.docx").write_bytes(documents.docx(paragraphs * 3))  # 45,000 characters; 8K tokens hold less
    async with Client(create_server(in_roots(emulator, data_dir, papers))) as client:
        arguments = {"prompt": "Read.", "files": ["longer.docx"], "model": "glm-4-airx"}
        tight = entry(ok(await client.call_tool("chat", arguments)), "longer.docx")
    assert tight["sent_part"].endswith("the rest would pass the context window of glm-4-airx")
    assert upstream_calls(emulator, "/chat/completions")[-1].status == 200  # it fit the window: no 1261


@pytest.mark.parametrize(
    ("name", "content", "said"),
    [
        ("voice.m4a", b"\x00\x00\x00\x18ftypM4A " + bytes(64), ["voice.m4a is M4A audio", "WAV, MP3"]),
        ("clip.mp4", b"\x00\x00\x00\x18ftypisom" + bytes(64), ["clip.mp4 is MP4 video", "cannot read"]),
        ("bundle.zip", b"PK\x03\x04" + bytes(64), ["bundle.zip is a ZIP archive"]),
        ("archive", b"PK\x03\x04" + bytes(64), ["archive is binary", "ZIP archive"]),
        ("scan.tiff", b"II*\x00" + bytes(64), ["scan.tiff is a TIFF image"]),
        ("long.mp3", documents.mp3(31), ["long.mp3 is MP3 audio of 31.0 s", "at most 30 s", "only WAV is split"]),
        ("fake.pdf", b"just text, not a PDF", ["fake.pdf is named as a PDF document, but its content is not one"]),
        ("sheet.xlsx", documents.docx(["a Word file"]), ["sheet.xlsx is named as a XLSX document"]),
        ("noise.wav", b"RIFF\x00\x00\x00\x00AVI junk", ["noise.wav is named as a WAV recording"]),
    ],
)
async def test_what_the_platform_cannot_read_is_refused_by_name_before_anything_is_sent(
    emulator: Emulator, data_dir: Path, papers: Path, name: str, content: bytes, said: list[str]
) -> None:
    (papers / name).write_bytes(content)
    async with Client(create_server(in_roots(emulator, data_dir, papers))) as client:
        refused = failed(await client.call_tool("chat", {"prompt": "Read.", "files": ["report.pdf", name]}))
    assert refused["error"] == "invalid_argument" and refused["field"] == "files"
    for words in said:
        assert words in refused["message"], (words, refused["message"])
    assert emulator.state.exchanges == []  # not even the PDF named before it was uploaded


async def test_a_document_the_parser_cannot_read_fails_the_call_saying_so(
    emulator: Emulator, data_dir: Path, papers: Path
) -> None:
    (papers / "broken.pdf").write_bytes(b"%PDF-1.4\nno objects at all\n%%EOF\n")
    async with Client(create_server(in_roots(emulator, data_dir, papers))) as client:
        refused = failed(await client.call_tool("chat", {"prompt": "Read.", "files": ["broken.pdf"]}))
    assert refused["error"] == "media_failed" and "did not read broken.pdf" in refused["message"]
    assert "no pages" in refused["message"] and refused["retryable"] is False
    assert calls(emulator, "/chat/completions") == 0


async def test_a_document_named_without_its_extension_is_known_by_its_bytes(
    emulator: Emulator, data_dir: Path, papers: Path
) -> None:
    (papers / "REPORT").write_bytes(documents.pdf([["Found by its magic bytes"]]))
    async with Client(create_server(in_roots(emulator, data_dir, papers))) as client:
        out = ok(await client.call_tool("chat", {"prompt": "Read.", "files": ["REPORT"]}))
    assert entry(out, "REPORT")["kind"] == "document" and "Found by its magic bytes" in sent_text(emulator)


async def test_documents_and_recordings_are_opened_as_every_file_is(
    emulator: Emulator, data_dir: Path, papers: Path, tmp_path: Path
) -> None:
    """Beneath their root, never through a link that leads out, regular files only, within their size."""
    outside = tmp_path / "elsewhere.pdf"
    outside.write_bytes(documents.pdf([["not for you"]]))
    (papers / "linked.pdf").symlink_to(outside)
    os.mkfifo(papers / "pipe.wav")
    with open(papers / "huge.pdf", "wb") as huge:  # sparse: its size is refused before a byte is read
        huge.truncate(51 * 1024 * 1024)
    said = {
        "linked.pdf": "linked.pdf is outside",
        "pipe.wav": "pipe.wav is a FIFO, not a regular file",
        "huge.pdf": "huge.pdf is 53,477,376 bytes, over the file parser's limit of 52,428,800 bytes (50 MiB)",
    }
    async with Client(create_server(in_roots(emulator, data_dir, papers))) as client:
        for name, words in said.items():
            with anyio.fail_after(30):  # a FIFO must not block the call
                refused = failed(await client.call_tool("chat", {"prompt": "Read.", "files": [name]}))
            assert refused["field"] == "files" and words in refused["message"], refused["message"]
    assert emulator.state.exchanges == []
