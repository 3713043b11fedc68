"""What a file named in `files` is, beyond text and images: a document the platform's file parser reads, a recording
its speech-to-text hears, or a format nothing on the platform reads (refused by name).

A file is taken by its extension and checked by its magic bytes: a `.pdf` must start like a PDF, a `.docx` must be a
zip holding a Word document; a file whose extension says nothing is recognised by its bytes alone (a PDF, a WAV,
an MP3 with its ID3 tag). Recordings are made to fit the platform's speech-to-text, which takes WAV or MP3 of at
most `ASR_MAX_SECONDS` and `ASR_MAX_BYTES` per request: a longer PCM WAV is split by frames (the standard library's
`wave`) into parts within both; any other recording over them is refused, naming the limit. The limits are the
platform's (docs/glm-endpoints.md); the per-call bounds beside them are this server's, like its other files' bounds.
"""

from __future__ import annotations

import hashlib
import io
import struct
import wave
import zipfile
from dataclasses import dataclass

from glm_mcp.errors import ArgumentError

__all__ = [
    "ASR_MAX_BYTES",
    "ASR_MAX_SECONDS",
    "AUDIO",
    "DOCUMENTS",
    "DOCUMENT_MAX_BYTES",
    "MAX_AUDIO_SECONDS",
    "MAX_CONVERTED_BYTES",
    "UNREADABLE",
    "Document",
    "Recording",
    "binary_name",
    "check_document",
    "content_hash",
    "recording_parts",
    "sniffed",
    "unreadable",
]

FIELD = "files"
MiB = 1024 * 1024
DOCUMENTS: dict[str, str] = {
    ".pdf": "PDF", ".docx": "DOCX", ".doc": "DOC", ".xlsx": "XLSX", ".xls": "XLS", ".pptx": "PPTX", ".ppt": "PPT",
}  # fmt: skip
"""The documents the file parser (Lite) reads, by extension, with the `file_type` it is told."""
AUDIO: dict[str, str] = {".wav": "audio/wav", ".mp3": "audio/mpeg"}
"""The recordings speech-to-text (GLM-ASR) takes, by extension, with their media type."""
UNREADABLE: dict[str, str] = {
    ".m4a": "M4A audio", ".aac": "AAC audio", ".ogg": "Ogg audio", ".oga": "Ogg audio", ".opus": "Opus audio",
    ".flac": "FLAC audio", ".wma": "WMA audio", ".aif": "AIFF audio", ".aiff": "AIFF audio", ".amr": "AMR audio",
    ".mp4": "MP4 video", ".m4v": "MP4 video", ".mov": "QuickTime video", ".mkv": "Matroska video",
    ".webm": "WebM video", ".avi": "AVI video", ".wmv": "WMV video", ".flv": "Flash video",
    ".bmp": "a BMP image", ".tif": "a TIFF image", ".tiff": "a TIFF image", ".heic": "a HEIC image",
    ".ico": "an icon", ".psd": "a Photoshop image",
    ".zip": "a ZIP archive", ".gz": "a gzip archive", ".tgz": "a gzip archive", ".tar": "a tar archive",
    ".bz2": "a bzip2 archive", ".xz": "an xz archive", ".7z": "a 7-Zip archive", ".rar": "a RAR archive",
    ".epub": "an EPUB e-book", ".odt": "an OpenDocument text", ".ods": "an OpenDocument spreadsheet",
    ".odp": "an OpenDocument presentation", ".pages": "a Pages document", ".numbers": "a Numbers spreadsheet",
    ".key": "a Keynote presentation", ".exe": "a Windows program", ".dll": "a Windows library",
    ".so": "a shared library", ".dylib": "a shared library", ".class": "a Java class", ".jar": "a Java archive",
    ".pyc": "Python bytecode", ".sqlite": "an SQLite database", ".sqlite3": "an SQLite database", ".db": "a database",
}  # fmt: skip
"""Formats nothing on the platform reads (the model, the file parser's Lite tool, speech-to-text): refused by name."""
_WHAT_IS_READ = (
    "files sends text, images (png, jpeg, webp, gif), documents (PDF, Word .docx/.doc, Excel .xlsx/.xls, PowerPoint "
    ".pptx/.ppt: the platform's file parser reads them) and recordings (WAV, MP3: its speech-to-text hears them)"
)

ASR_MAX_SECONDS = 30.0
"""The longest recording speech-to-text takes in one request (the platform's "≤ 30 seconds")."""
ASR_MAX_BYTES = 25_000_000
"""The largest file speech-to-text takes in one request (the platform's "≤ 25 MB", read as 10^6 bytes)."""
DOCUMENT_MAX_BYTES = 50 * MiB
"""The largest document the file parser's Lite tool takes."""
MAX_CONVERTED_BYTES = 100 * MiB
"""Most bytes of documents and recordings one call may read, all together (they are held in memory to send)."""
MAX_AUDIO_SECONDS = 20 * 60.0
"""Most seconds of recordings one call may have transcribed: at most 40 requests of 30 s, each billed."""


@dataclass(frozen=True, slots=True)
class Document:
    """A document read, still to become text: where its text goes in the message (`block`) and in the result's
    list of files (`entry`)."""

    shown: str
    data: bytes
    file_type: str
    block: int
    entry: int


@dataclass(frozen=True, slots=True)
class Recording:
    """A recording read and cut into the parts speech-to-text takes, still to become text."""

    shown: str
    sha256: str
    size: int
    parts: tuple[bytes, ...]
    media_type: str
    seconds: float
    block: int
    entry: int


def sniffed(head: bytes) -> str | None:
    """The extension a file's first bytes say it has, for a file whose own says nothing: `.pdf`, `.wav`, `.mp3`."""
    if head.startswith(b"%PDF-"):
        return ".pdf"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return ".wav"
    if head.startswith(b"ID3"):
        return ".mp3"
    return None


def unreadable(shown: str, name: str) -> ArgumentError:
    return ArgumentError(FIELD, f"{shown} is {name}, which the platform cannot read: {_WHAT_IS_READ}.")


_MAGIC_NAMES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive (or an Office document named without its extension)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x7fELF", "a program (ELF)"),
    (b"MZ", "a Windows program"),
    (b"OggS", "Ogg audio"),
    (b"fLaC", "FLAC audio"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy Office document named without its extension"),
)


def binary_name(data: bytes) -> str | None:
    """What a binary file is, by its magic bytes, when it is a format worth naming in a refusal."""
    if data[4:8] == b"ftyp":
        return "an MP4 or M4A file"
    return next((name for magic, name in _MAGIC_NAMES if data.startswith(magic)), None)


_OOXML_PARTS = {"DOCX": "word/document.xml", "XLSX": "xl/workbook.xml", "PPTX": "ppt/presentation.xml"}
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def check_document(shown: str, data: bytes, file_type: str) -> None:
    """Refuse a document whose bytes are not what its extension says (before it is uploaded and paid for)."""
    if file_type == "PDF":
        fits = b"%PDF-" in data[:1024]
    elif file_type in _OOXML_PARTS:
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:  # reads the central directory only
                fits = _OOXML_PARTS[file_type] in archive.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            fits = False
    else:
        fits = data.startswith(_OLE)
    if not fits:
        raise ArgumentError(FIELD, f"{shown} is named as a {file_type} document, but its content is not one.")


def recording_parts(shown: str, data: bytes, media_type: str) -> tuple[tuple[bytes, ...], float]:
    """`data` as the parts speech-to-text takes, and its length in seconds; an `ArgumentError` naming the limit
    for a recording that cannot be made to fit."""
    if media_type == "audio/wav":
        return _wav_parts(shown, data)
    seconds = _mp3_seconds(shown, data)
    if seconds > ASR_MAX_SECONDS or len(data) > ASR_MAX_BYTES:
        raise ArgumentError(
            FIELD,
            f"{shown} is MP3 audio of {seconds:.1f} s and {len(data):,} bytes; the platform's speech-to-text takes "
            f"at most {ASR_MAX_SECONDS:g} s and 25 MB per request, and only WAV is split here. Convert it to WAV, "
            f"or cut it into parts of at most {ASR_MAX_SECONDS:g} s.",
        )
    return (data,), seconds


def _wav_parts(shown: str, data: bytes) -> tuple[tuple[bytes, ...], float]:
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ArgumentError(FIELD, f"{shown} is named as a WAV recording, but its content is not one.")
    try:
        with wave.open(io.BytesIO(data)) as reader:
            params = reader.getparams()
            frame_bytes = params.sampwidth * params.nchannels
            seconds = params.nframes / params.framerate
            if seconds <= ASR_MAX_SECONDS and len(data) <= ASR_MAX_BYTES:
                return (data,), seconds
            per_part = min(int(ASR_MAX_SECONDS * params.framerate), (ASR_MAX_BYTES - 1024) // frame_bytes)
            parts = []
            while frames := reader.readframes(per_part):
                out = io.BytesIO()
                with wave.open(out, "wb") as writer:
                    writer.setparams(params)
                    writer.writeframes(frames)
                parts.append(out.getvalue())
            return tuple(parts), seconds
    except (wave.Error, EOFError, struct.error, ZeroDivisionError) as exc:
        seconds = _wav_header_seconds(data)
        if seconds is not None and seconds <= ASR_MAX_SECONDS and len(data) <= ASR_MAX_BYTES:
            return (data,), seconds  # an encoding `wave` does not split (float, extensible), sent whole
        raise ArgumentError(
            FIELD,
            f"{shown} is a WAV recording that cannot be split here ({exc}); the platform's speech-to-text takes at "
            f"most {ASR_MAX_SECONDS:g} s and 25 MB per request. Convert it to 16-bit PCM WAV, or cut it into parts "
            f"of at most {ASR_MAX_SECONDS:g} s.",
        ) from None


def _wav_header_seconds(data: bytes) -> float | None:
    """A WAV's length from its header (the data chunk's size over the format's byte rate), whatever its encoding."""
    position, byte_rate = 12, 0
    while position + 8 <= len(data):
        chunk, size = data[position : position + 4], struct.unpack_from("<I", data, position + 4)[0]
        if chunk == b"fmt " and size >= 16 and position + 20 <= len(data):
            byte_rate = struct.unpack_from("<I", data, position + 16)[0]
        elif chunk == b"data":
            return min(size, len(data) - position - 8) / byte_rate if byte_rate else None
        position += 8 + size + (size & 1)
    return None


_BITRATES = {
    (3, 3): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (3, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (3, 1): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (2, 3): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (2, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (2, 1): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
"""kbit/s by (MPEG-1: 3, MPEG-2 and 2.5: 2; layer I: 3, II: 2, III: 1) and the frame header's bitrate index."""
_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mp3_seconds(shown: str, data: bytes) -> float:
    """An MPEG audio file's length, its frames counted (exact for constant and variable bitrates alike)."""
    position = 0
    if data[:3] == b"ID3" and len(data) >= 10:
        position = 10 + (data[6] & 0x7F) * 2**21 + (data[7] & 0x7F) * 2**14 + (data[8] & 0x7F) * 2**7 + (data[9] & 0x7F)
        position += 10 if data[5] & 0x10 else 0  # a footer
    seconds, frames = 0.0, 0
    while position + 4 <= len(data):
        frame = _mp3_frame(data[position : position + 4])
        if frame is None:
            break  # a trailing tag, or the end of the audio
        length, samples, rate = frame
        seconds += samples / rate
        frames += 1
        position += length
    if frames == 0:
        raise ArgumentError(FIELD, f"{shown} is named as an MP3 recording, but its content is not MPEG audio.")
    return seconds


def _mp3_frame(header: bytes) -> tuple[int, int, int] | None:
    """(bytes, samples, sample rate) of the MPEG audio frame this header starts, or None when it starts none."""
    if header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version, layer = header[1] >> 3 & 3, header[1] >> 1 & 3
    bitrate_index, rate_index, padding = header[2] >> 4, header[2] >> 2 & 3, header[2] >> 1 & 1
    if version == 1 or layer == 0 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    bitrate = _BITRATES[(3 if version == 3 else 2, layer)][bitrate_index] * 1000
    rate = _SAMPLE_RATES[version][rate_index]
    if layer == 3:
        return (12 * bitrate // rate + padding) * 4, 384, rate
    samples = 1152 if layer == 2 or version == 3 else 576
    return samples // 8 * bitrate // rate + padding, samples, rate


def content_hash(data: bytes) -> str:
    """What a file's extract is kept by: its content's SHA-256, hex."""
    return hashlib.sha256(data).hexdigest()
