"""Real documents and recordings, made here: a PDF with text on its pages, Word, Excel and PowerPoint files as
their applications write the parts that hold text, WAV and MP3 audio.

Each is a valid file of its format, small and deterministic, built with the standard library, so tests and the
benchmark need no fixtures on disk. The audio carries its "words" as printable ASCII in its sample data, at the
second they are spoken: what the emulator's speech-to-text hears (glm_mcp/emulator/audio.py).
"""

from __future__ import annotations

import io
import struct
import wave
import zipfile
import zlib
from collections.abc import Mapping, Sequence

__all__ = ["docx", "mp3", "pdf", "pptx", "wav", "xlsx"]


def pdf(pages: Sequence[Sequence[str]], *, compress: bool = True) -> bytes:
    """A PDF of one page per item, each line of it shown with Helvetica (content streams FlateDecode unless
    `compress` is false), with its cross-reference table, as writers make them."""
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled once the page tree's number is known
    tree = add(b"")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    kids = []
    for lines in pages:
        shown = b"".join(b"(" + _pdf_string(line) + b") Tj T*\n" for line in lines)
        content = b"BT /F1 12 Tf 14 TL 72 720 Td\n" + shown + b"ET"
        data = zlib.compress(content) if compress else content
        filters = b" /Filter /FlateDecode" if compress else b""
        stream = add(b"<< /Length %d%s >>\nstream\n%s\nendstream" % (len(data), filters, data))
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 %d 0 R >> >> "
                b"/Contents %d 0 R >>" % (tree, font, stream)
            )
        )
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % tree
    objects[tree - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % kid for kid in kids),
        len(kids),
    )
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.writelines(b"%010d 00000 n \n" % offset for offset in offsets)
    out.write(b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, catalog, xref))
    return out.getvalue()


def _pdf_string(text: str) -> bytes:
    raw = text.encode("cp1252")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>{overrides}</Types>'
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{relations}</Relationships>'
)
_OFFICE = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def _package(parts: Mapping[str, str], overrides: Mapping[str, str], main: str) -> bytes:
    """An Office Open XML package: the content types, the package's relationship to its main part, the parts."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        override = "".join(f'<Override PartName="/{name}" ContentType="{kind}"/>' for name, kind in overrides.items())
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES.format(overrides=override))
        relation = f'<Relationship Id="rId1" Type="{_OFFICE}/officeDocument" Target="{main}"/>'
        archive.writestr("_rels/.rels", _RELS.format(relations=relation))
        for name, text in parts.items():
            archive.writestr(name, text)
    return out.getvalue()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def docx(paragraphs: Sequence[str]) -> bytes:
    """A Word document of these paragraphs."""
    body = "".join(f'<w:p><w:r><w:t xml:space="preserve">{_escape(p)}</w:t></w:r></w:p>' for p in paragraphs)
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f"<w:body>{body}</w:body></w:document>"
    )
    kind = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    return _package({"word/document.xml": document}, {"word/document.xml": kind}, "word/document.xml")


def xlsx(sheets: Mapping[str, Sequence[Sequence[str]]]) -> bytes:
    """An Excel workbook: each sheet's rows of cells, as shared strings."""
    strings: list[str] = []
    parts: dict[str, str] = {}
    overrides = {"xl/workbook.xml": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"}
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    listed, relations = [], []
    for number, (name, rows) in enumerate(sheets.items(), 1):
        cells = []
        for r, row in enumerate(rows, 1):
            row_cells = []
            for c, value in enumerate(row):
                strings.append(value)
                row_cells.append(f'<c r="{chr(65 + c)}{r}" t="s"><v>{len(strings) - 1}</v></c>')
            cells.append(f'<row r="{r}">{"".join(row_cells)}</row>')
        parts[f"xl/worksheets/sheet{number}.xml"] = (
            f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{main}"><sheetData>{"".join(cells)}'
            "</sheetData></worksheet>"
        )
        overrides[f"xl/worksheets/sheet{number}.xml"] = (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
        )
        listed.append(f'<sheet name="{_escape(name)}" sheetId="{number}" r:id="rId{number}"/>')
        relations.append(
            f'<Relationship Id="rId{number}" Type="{_OFFICE}/worksheet" Target="worksheets/sheet{number}.xml"/>'
        )
    parts["xl/workbook.xml"] = (
        f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{main}" xmlns:r="{_OFFICE}">'
        f"<sheets>{''.join(listed)}</sheets></workbook>"
    )
    parts["xl/_rels/workbook.xml.rels"] = _RELS.format(relations="".join(relations))
    shared = "".join(f"<si><t>{_escape(s)}</t></si>" for s in strings)
    parts["xl/sharedStrings.xml"] = f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{main}">{shared}</sst>'
    return _package(parts, overrides, "xl/workbook.xml")


def pptx(slides: Sequence[Sequence[str]]) -> bytes:
    """A PowerPoint presentation: each slide's paragraphs in one text box."""
    drawing = "http://schemas.openxmlformats.org/drawingml/2006/main"
    presentation = "http://schemas.openxmlformats.org/presentationml/2006/main"
    parts = {
        "ppt/presentation.xml": f'<?xml version="1.0" encoding="UTF-8"?><p:presentation xmlns:p="{presentation}"/>'
    }
    office = "application/vnd.openxmlformats-officedocument.presentationml"
    overrides = {"ppt/presentation.xml": f"{office}.presentation.main+xml"}
    for number, paragraphs in enumerate(slides, 1):
        text = "".join(f"<a:p><a:r><a:t>{_escape(p)}</a:t></a:r></a:p>" for p in paragraphs)
        parts[f"ppt/slides/slide{number}.xml"] = (
            f'<?xml version="1.0" encoding="UTF-8"?><p:sld xmlns:p="{presentation}" xmlns:a="{drawing}">'
            f"<p:cSld><p:spTree><p:sp><p:txBody>{text}</p:txBody></p:sp></p:spTree></p:cSld></p:sld>"
        )
        overrides[f"ppt/slides/slide{number}.xml"] = f"{office}.slide+xml"
    return _package(parts, overrides, "ppt/presentation.xml")


def wav(seconds: float, words: Mapping[float, str] | None = None, *, rate: int = 8000) -> bytes:
    """A mono 8-bit PCM WAV of `seconds` of silence, with each of `words` "spoken" at its second: written as
    ASCII bytes into the samples there (what the emulator hears)."""
    samples = bytearray(b"\x80" * round(seconds * rate))
    for at, text in (words or {}).items():
        start = round(at * rate)
        samples[start : start + len(text)] = text.encode("ascii")
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(1)
        writer.setframerate(rate)
        writer.writeframes(bytes(samples))
    return out.getvalue()


_MP3_FRAME_BYTES = 417
"""MPEG-1 layer III, 128 kbit/s, 44.1 kHz, no padding: 144 * 128000 / 44100 bytes, 1152 samples."""


def mp3(seconds: float, words: str = "") -> bytes:
    """An MP3 of silent frames (side information zero: no audio data) lasting `seconds`, an ID3 tag in front,
    `words` in the ancillary bytes of the first frames (what the emulator hears)."""
    frames = round(seconds * 44100 / 1152)
    header = b"\xff\xfb\x90\x00"
    body_bytes = _MP3_FRAME_BYTES - 4
    spoken = words.encode("ascii")
    out = io.BytesIO()
    out.write(b"ID3\x04\x00\x00" + struct.pack(">I", 0))  # an empty ID3v2.4 tag
    for index in range(frames):
        body = bytearray(body_bytes)
        piece = spoken[index * 200 : (index + 1) * 200]
        body[40 : 40 + len(piece)] = piece  # past the 32 bytes of side information
        out.write(header + bytes(body))
    return out.getvalue()
