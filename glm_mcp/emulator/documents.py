"""Text out of documents, for the file parser: PDF, Word, Excel and PowerPoint read for real, with the standard library.

DOCX, XLSX and PPTX are zip archives of XML: their paragraphs, cells and slides are read from the parts that hold
them. A PDF is read the minimal way: its pages in the order of the page tree, each page's content streams
(uncompressed or FlateDecode) and the strings its text operators show (``Tj``, ``TJ``, ``'``, ``"``), in the
font's bytes taken as Latin-1. That reads what simple writers (and the tests) produce; it does not map
fonts' own encodings, so text in embedded subset fonts comes out as their codes, unlike the platform.
Legacy Office files (DOC, XLS, PPT) and images are not read: their "text" says what they are.

Everything is bounded: at most ``MAX_TEXT_BYTES`` inflated from any stream or archive member.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from xml.etree import ElementTree

MAX_TEXT_BYTES = 64 * 1024 * 1024
"""Most bytes inflated from one PDF stream or one archive member."""


class Unreadable(Exception):
    """The file is not what its type says, or is damaged: the parse task fails with this message."""


@dataclass(frozen=True)
class Extracted:
    text: str
    pages: int
    """Pages (PDF), slides (PPTX), sheets (XLSX); 1 for the others."""


def extract(data: bytes, file_type: str) -> Extracted:
    """The text of a file of ``file_type`` (upper case: ``PDF``, ``DOCX``, ...)."""
    reader = _READERS.get(file_type)
    if reader is not None:
        return reader(data)
    if file_type in ("TXT", "MD", "CSV", "HTML"):
        return Extracted(data.decode("utf-8", errors="replace"), 1)
    if file_type in ("DOC", "XLS", "PPT", "WPS"):
        if not data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
            raise Unreadable(f"the file is not a {file_type} document")
        return Extracted(f"[a {file_type} document of {len(data):,} bytes: the emulator does not read its text]", 1)
    return Extracted(f"[a {file_type} image of {len(data):,} bytes: the emulator does not read text in images]", 1)


# --- PDF ---------------------------------------------------------------------------------------------------------

_OBJECT = re.compile(rb"(\d+)\s+(\d+)\s+obj\b")
_REFERENCE = re.compile(rb"(\d+)\s+\d+\s+R\b")
_STREAM = re.compile(rb"stream\r?\n")


def _pdf(data: bytes) -> Extracted:
    if b"%PDF-" not in data[:1024]:
        raise Unreadable("the file is not a PDF (no %PDF- header)")
    objects = _pdf_objects(data)
    pages = list(_page_tree(objects))
    if not pages:
        raise Unreadable("the PDF has no pages")
    texts = []
    for page in pages:
        contents = _dictionary_value(objects[page][0], b"Contents")
        streams = [int(n) for n in _REFERENCE.findall(contents or b"")]
        texts.append("".join(_shown_text(_stream_data(objects, n)) for n in streams).strip())
    return Extracted("\n\n".join(texts), len(pages))


def _pdf_objects(data: bytes) -> dict[int, tuple[bytes, bytes | None]]:
    """Each object by number: its dictionary text and its stream's raw bytes (None without one). The last
    definition of a number wins, as an incremental update intends."""
    objects: dict[int, tuple[bytes, bytes | None]] = {}
    position = 0
    while match := _OBJECT.search(data, position):
        start = match.end()
        end = data.find(b"endobj", start)
        if end < 0:
            break
        stream: bytes | None = None
        opened = _STREAM.search(data, start, end)  # a stream's keyword comes before any `endobj` in its bytes
        body = data[start : opened.start() if opened else end]
        if opened is not None:
            begin = opened.end()
            length = _dictionary_value(body, b"Length")
            if length is not None and length.isdigit():
                stop = begin + int(length)
            else:  # an indirect length: up to the keyword
                stop = data.find(b"endstream", begin)
                stop = len(data) if stop < 0 else stop
            stream = data[begin:stop]
            end = data.find(b"endobj", stop)
            if end < 0:
                end = len(data)
        objects[int(match.group(1))] = (body, stream)
        position = end + len(b"endobj")
    return objects


def _dictionary_value(dictionary: bytes, key: bytes) -> bytes | None:
    """The raw value of ``/key`` in a dictionary: a reference, an array, a name or a number."""
    match = re.search(rb"/" + key + rb"(?![A-Za-z])\s*(\[[^\]]*\]|\d+\s+\d+\s+R|/[^\s/<>\[\]()]+|\d+)", dictionary)
    return match.group(1) if match else None


def _page_tree(objects: dict[int, tuple[bytes, bytes | None]]) -> Iterator[int]:
    """The page objects in reading order: the catalog's page tree, else every /Page in number order."""
    root = next((n for n, (body, _) in objects.items() if re.search(rb"/Type\s*/Catalog\b", body)), None)
    pages = _dictionary_value(objects[root][0], b"Pages") if root is not None else None
    if pages is None:
        yield from sorted(n for n, (body, _) in objects.items() if re.search(rb"/Type\s*/Page(?![A-Za-z])", body))
        return
    seen: set[int] = set()
    stack = [int(n) for n in _REFERENCE.findall(pages)]
    while stack:
        number = stack.pop(0)
        if number in seen or number not in objects:
            continue
        seen.add(number)
        body = objects[number][0]
        kids = _dictionary_value(body, b"Kids")
        if kids is not None:
            stack[0:0] = [int(n) for n in _REFERENCE.findall(kids)]
        elif re.search(rb"/Type\s*/Page(?![A-Za-z])", body):
            yield number


def _stream_data(objects: dict[int, tuple[bytes, bytes | None]], number: int) -> bytes:
    body, stream = objects.get(number, (b"", None))
    if stream is None:
        return b""
    filters = _dictionary_value(body, b"Filter") or b""
    if not filters:
        return stream
    if filters.strip(b"[] ") not in (b"/FlateDecode", b"/Fl"):
        return b""  # a filter this reader does not know: no text from it
    inflater = zlib.decompressobj()
    try:
        return inflater.decompress(stream, MAX_TEXT_BYTES)
    except zlib.error as exc:
        raise Unreadable(f"a content stream of the PDF is damaged ({exc})") from None


_TOKEN = re.compile(rb"\s*(?:(\()|(<(?!<)[0-9A-Fa-f\s]*>)|(\[)|(\])|(/[^\s/<>\[\]()]*)|([-+.\d]+)|([A-Za-z'\"*]+)|(.))")


def _shown_text(content: bytes) -> str:
    """The strings a content stream shows, a line per text line."""
    out: list[str] = []
    operands: list[object] = []
    array: list[object] | None = None
    position = 0
    while position < len(content):
        match = _TOKEN.match(content, position)
        if match is None:
            break
        position = match.end()
        string, hexa, opening, closing, _name, number, operator, _other = match.groups()
        value: object = None
        if string:
            text, position = _literal(content, position)
            value = text
        elif hexa:
            digits = re.sub(rb"\s", b"", hexa[1:-1])
            value = bytes.fromhex((digits + b"0" * (len(digits) % 2)).decode()).decode("latin-1")
        elif number:
            try:
                value = float(number)
            except ValueError:
                value = 0.0
        elif opening:
            array = []
            continue
        elif closing:
            value, array = array or [], None
        elif operator:
            out.append(_operate(operator.decode("latin-1"), operands))
            operands = []
            continue
        else:
            continue
        (array if array is not None else operands).append(value)
    return "".join(out)


def _operate(operator: str, operands: list[object]) -> str:
    if operator in ("Tj", "'", '"'):
        shown = next((o for o in reversed(operands) if isinstance(o, str)), "")
        return ("\n" if operator != "Tj" else "") + shown
    if operator == "TJ":
        pieces = operands[-1] if operands and isinstance(operands[-1], list) else []
        return "".join(p if isinstance(p, str) else " " if isinstance(p, float) and p < -200 else "" for p in pieces)
    if operator in ("T*", "ET"):
        return "\n"
    if operator in ("Td", "TD") and len(operands) >= 2 and operands[-1] not in (0.0, None):
        return "\n"
    return ""


_ESCAPES = {ord("n"): "\n", ord("r"): "\r", ord("t"): "\t", ord("b"): "\b", ord("f"): "\f"}


def _literal(content: bytes, position: int) -> tuple[str, int]:
    """A literal string starting after its ``(``: its text and the position after its ``)``."""
    out: list[str] = []
    depth = 1
    while position < len(content):
        byte = content[position]
        position += 1
        if byte == ord("\\") and position < len(content):
            escaped = content[position]
            position += 1
            if escaped in _ESCAPES:
                out.append(_ESCAPES[escaped])
            elif ord("0") <= escaped <= ord("7"):
                digits = bytes([escaped])
                while len(digits) < 3 and position < len(content) and ord("0") <= content[position] <= ord("7"):
                    digits += bytes([content[position]])
                    position += 1
                out.append(chr(int(digits, 8) & 0xFF))
            elif escaped in (ord("\n"), ord("\r")):
                if escaped == ord("\r") and content[position : position + 1] == b"\n":
                    position += 1
            else:
                out.append(chr(escaped))
            continue
        if byte == ord("("):
            depth += 1
        elif byte == ord(")"):
            depth -= 1
            if depth == 0:
                break
        out.append(chr(byte))
    return "".join(out), position


# --- Office Open XML ---------------------------------------------------------------------------------------------

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_S = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_R = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}"


def _archive(data: bytes, kind: str, part: str) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise Unreadable(f"the file is not a {kind} document (not a zip archive)") from None
    if part not in archive.namelist():
        raise Unreadable(f"the file is not a {kind} document (it has no {part})")
    return archive


def _xml(archive: zipfile.ZipFile, name: str) -> ElementTree.Element:
    with archive.open(name) as member:
        raw = member.read(MAX_TEXT_BYTES + 1)
    if len(raw) > MAX_TEXT_BYTES:
        raise Unreadable(f"{name} inflates past {MAX_TEXT_BYTES:,} bytes")
    try:
        return ElementTree.fromstring(raw)
    except ElementTree.ParseError as exc:
        raise Unreadable(f"{name} is not well-formed XML ({exc})") from None


def _docx(data: bytes) -> Extracted:
    with _archive(data, "DOCX", "word/document.xml") as archive:
        document = _xml(archive, "word/document.xml")
    lines = []
    for paragraph in document.iter(f"{_W}p"):
        pieces = []
        for node in paragraph.iter():
            if node.tag == f"{_W}t":
                pieces.append(node.text or "")
            elif node.tag == f"{_W}tab":
                pieces.append("\t")
            elif node.tag in (f"{_W}br", f"{_W}cr"):
                pieces.append("\n")
        lines.append("".join(pieces))
    return Extracted("\n".join(lines).strip(), 1)


def _xlsx(data: bytes) -> Extracted:
    with _archive(data, "XLSX", "xl/workbook.xml") as archive:
        names = set(archive.namelist())
        shared = []
        if "xl/sharedStrings.xml" in names:
            strings = _xml(archive, "xl/sharedStrings.xml")
            shared = ["".join(t.text or "" for t in item.iter(f"{_S}t")) for item in strings.iter(f"{_S}si")]
        targets: dict[str, str] = {}
        if "xl/_rels/workbook.xml.rels" in names:
            for relation in _xml(archive, "xl/_rels/workbook.xml.rels").iter(f"{_RELS}Relationship"):
                targets[relation.get("Id", "")] = relation.get("Target", "").lstrip("/").removeprefix("xl/")
        sheets = []
        for sheet in _xml(archive, "xl/workbook.xml").iter(f"{_S}sheet"):
            part = "xl/" + targets.get(sheet.get(f"{_R}id", ""), "")
            if part not in names:
                continue
            rows = []
            for row in _xml(archive, part).iter(f"{_S}row"):
                cells = []
                for cell in row.iter(f"{_S}c"):
                    kind = cell.get("t")
                    if kind == "inlineStr":
                        cells.append("".join(t.text or "" for t in cell.iter(f"{_S}t")))
                        continue
                    value = cell.find(f"{_S}v")
                    text = value.text if value is not None and value.text else ""
                    shared_string = kind == "s" and text.isdigit() and int(text) < len(shared)
                    cells.append(shared[int(text)] if shared_string else text)
                rows.append("\t".join(cells))
            sheets.append(f"{sheet.get('name', '')}\n" + "\n".join(rows))
    return Extracted("\n\n".join(sheets).strip(), len(sheets))


def _pptx(data: bytes) -> Extracted:
    with _archive(data, "PPTX", "ppt/presentation.xml") as archive:
        slides = sorted(
            (n for n in archive.namelist() if re.fullmatch(r"ppt/slides/slide\d+\.xml", n)),
            key=lambda n: int(re.sub(r"\D", "", n)),
        )
        texts = []
        for name in slides:
            paragraphs = ["".join(t.text or "" for t in p.iter(f"{_A}t")) for p in _xml(archive, name).iter(f"{_A}p")]
            texts.append("\n".join(p for p in paragraphs if p))
    return Extracted("\n\n".join(texts).strip(), len(slides))


_READERS = {"PDF": _pdf, "DOCX": _docx, "XLSX": _xlsx, "PPTX": _pptx}
