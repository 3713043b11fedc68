"""The `files` argument: paths and glob patterns inside the allowed roots, read and checked before anything is sent.

Text files become delimited blocks naming each file (its path relative to its root, a language
from its extension) appended to the user's message; images (png, jpeg, webp, gif) become image
parts for a vision model. Every path is resolved (symlinks, `..`) before it is checked against the
roots. Whatever cannot be sent whole (a path outside the roots, a glob that matches nothing, a
binary file, an image over the platform's limit or for a model that cannot see, a total past a
budget) is refused with an `ArgumentError` naming the file and the limit: nothing is ever cut.
"""

from __future__ import annotations

import base64
import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

from glm_mcp.config import Settings
from glm_mcp.errors import ArgumentError
from glm_mcp.glm.models import IMAGE_MAX_BYTES, IMAGE_TYPES, sees_images
from glm_mcp.glm.types import ContentPart, ImagePart, MediaURL, Message, TextPart
from glm_mcp.tools.answer import SentFile
from glm_mcp.tools.workspace.roots import Roots

FIELD = "files"
MAX_MATCHES = 1000
"""Files one glob may bring in: a pattern such as `**/*` in a large tree is a mistake, not a request."""

LANGUAGES: dict[str, str] = {
    ".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript",
    ".ts": "typescript", ".tsx": "tsx", ".jsx": "jsx", ".go": "go", ".rs": "rust", ".java": "java",
    ".kt": "kotlin", ".swift": "swift", ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".hpp": "cpp",
    ".cs": "csharp", ".rb": "ruby", ".php": "php", ".sh": "bash", ".bash": "bash", ".zsh": "zsh",
    ".sql": "sql", ".html": "html", ".css": "css", ".scss": "scss", ".json": "json", ".yaml": "yaml",
    ".yml": "yaml", ".toml": "toml", ".ini": "ini", ".xml": "xml", ".md": "markdown", ".rst": "rst",
    ".txt": "text", ".csv": "csv", ".lua": "lua", ".r": "r", ".scala": "scala", ".dart": "dart",
    ".vue": "vue", ".svelte": "svelte", ".dockerfile": "dockerfile", ".tf": "terraform", ".proto": "protobuf",
}  # fmt: skip
_NAMED = {"dockerfile": "dockerfile", "makefile": "makefile"}
_MAGIC: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
}


@dataclass(slots=True)
class Attachments:
    """What `files` named, read and checked: the text blocks, the image parts, and the list for the result."""

    text: str = ""
    images: list[tuple[str, ImagePart, int]] = field(default_factory=list)
    """(path, part, bytes) of each image."""
    sent: list[SentFile] = field(default_factory=list)

    def attach(self, messages: list[Message]) -> list[Message]:
        """`messages` with the files added to the last user message."""
        if not self.sent:
            return messages
        index = max(i for i, m in enumerate(messages) if m.role == "user")
        message = messages[index]
        parts: list[ContentPart]
        if isinstance(message.content, list):
            parts = list(message.content)
        else:
            parts = [TextPart(type="text", text=message.content or "")]
        if self.text:
            if parts and isinstance(parts[-1], TextPart):
                last = parts[-1]
                parts[-1] = TextPart(type="text", text=f"{last.text}\n\n{self.text}" if last.text else self.text)
            else:
                parts.append(TextPart(type="text", text=self.text))
        parts += [part for _, part, _ in self.images]
        content: str | list[ContentPart] = parts
        if len(parts) == 1 and isinstance(parts[0], TextPart):
            content = parts[0].text
        return [*messages[:index], message.model_copy(update={"content": content}), *messages[index + 1 :]]


def read_files(patterns: list[str], roots: Roots, settings: Settings, model: str) -> Attachments:
    """Read every file `patterns` names inside `roots`; `ArgumentError` for the first that cannot be sent whole."""
    found: dict[Path, str] = {}  # resolved path -> shown path, in the order named
    for pattern in patterns:
        for path, shown in _expand(pattern.strip(), roots):
            found.setdefault(path, shown)
    attachments = Attachments()
    blocks: list[str] = []
    chars = image_bytes = 0
    for path, shown in found.items():
        media_type = IMAGE_TYPES.get(path.suffix.lower())
        size = _size(path, shown)
        if media_type is not None:
            _check_image(path, shown, size, media_type, model, settings)
            image_bytes += size
            if image_bytes > settings.files_max_image_bytes:
                raise ArgumentError(
                    FIELD,
                    f"{shown} brings the images to {image_bytes:,} bytes, over the limit of "
                    f"{settings.files_max_image_bytes:,} for one call (GLM_FILES_MAX_IMAGE_BYTES). Send fewer images.",
                )
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            attachments.images.append((shown, ImagePart(type="image_url", image_url=MediaURL(url=data)), size))
            attachments.sent.append(SentFile(path=shown, kind="image", bytes=size))
            continue
        remaining = settings.files_max_chars - chars
        if size > remaining * 4:  # a UTF-8 character is at most 4 bytes: this many bytes are too many characters
            raise _over_text_budget(shown, chars + size // 4, settings)
        text = _text(path, shown)
        chars += len(text)
        if chars > settings.files_max_chars:
            raise _over_text_budget(shown, chars, settings)
        blocks.append(f'<file path="{shown}" language="{language(path)}">\n{text}\n</file>')
        attachments.sent.append(SentFile(path=shown, kind="text", bytes=size, chars=len(text)))
    attachments.text = "\n\n".join(blocks)
    return attachments


def language(path: Path) -> str:
    """The language of a file, from its extension (or its name, for Dockerfile and Makefile)."""
    return LANGUAGES.get(path.suffix.lower()) or _NAMED.get(path.name.lower(), "text")


def _expand(pattern: str, roots: Roots) -> list[tuple[Path, str]]:
    """The files `pattern` names, resolved and inside a root, with the path shown for each."""
    if not pattern:
        raise ArgumentError(FIELD, "it has an empty entry; give paths or glob patterns such as src/**/*.py.")
    expanded = os.path.expanduser(pattern)
    magic = glob.has_magic(expanded)
    candidates: list[str] = []
    if os.path.isabs(expanded):
        candidates = sorted(glob.glob(expanded, recursive=True)) if magic else [expanded]
    elif magic:
        for root in roots.paths:
            candidates += [os.path.join(root, m) for m in sorted(glob.glob(expanded, root_dir=root, recursive=True))]
    else:
        existing = next((str(r / expanded) for r in roots.paths if os.path.lexists(r / expanded)), None)
        if existing is None:
            raise ArgumentError(FIELD, f"{pattern} does not exist in {roots.describe()}.")
        candidates = [existing]
    if magic:
        candidates = [c for c in candidates if os.path.isfile(c)]
        if not candidates:
            raise ArgumentError(FIELD, f"the pattern {pattern!r} matches no file in {roots.describe()}.")
        if len(candidates) > MAX_MATCHES:
            raise ArgumentError(
                FIELD, f"the pattern {pattern!r} matches {len(candidates):,} files, over {MAX_MATCHES:,}; narrow it."
            )
    result = []
    for candidate in candidates:
        resolved = Path(os.path.realpath(candidate))
        inside = next((r for r in roots.paths if resolved == r or resolved.is_relative_to(r)), None)
        if inside is None:
            raise ArgumentError(
                FIELD,
                f"{candidate} is outside the directories files may be read from"
                f"{f' (it resolves to {resolved})' if str(resolved) != candidate else ''}: {roots.describe()}.",
            )
        shown = resolved.relative_to(inside).as_posix() or resolved.name
        if not resolved.exists():
            raise ArgumentError(FIELD, f"{pattern} does not exist in {roots.describe()}.")
        if resolved.is_dir():
            raise ArgumentError(FIELD, f"{shown} is a directory; name its files, or a glob such as {shown}/**/*.py.")
        result.append((resolved, shown))
    return result


def _size(path: Path, shown: str) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise ArgumentError(FIELD, f"{shown} cannot be read: {exc.strerror or exc}.") from None


def _check_image(path: Path, shown: str, size: int, media_type: str, model: str, settings: Settings) -> None:
    if not sees_images(model):
        raise ArgumentError(
            FIELD,
            f"{shown} is an image, and {model} cannot see images. Pass model={settings.vision_model!r} "
            "(GLM_VISION_MODEL), or leave the image out.",
        )
    if size > IMAGE_MAX_BYTES:
        raise ArgumentError(
            FIELD, f"the image {shown} is {size:,} bytes, over the platform's limit of {IMAGE_MAX_BYTES:,} (5 MB)."
        )
    with path.open("rb") as file:
        head = file.read(16)
    if media_type == "image/webp":
        fits = head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    else:
        fits = any(head.startswith(magic) for magic in _MAGIC[media_type])
    if not fits:
        raise ArgumentError(FIELD, f"{shown} is named as an image ({media_type}) but its content is not one.")


def _text(path: Path, shown: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ArgumentError(FIELD, f"{shown} cannot be read: {exc.strerror or exc}.") from None
    try:
        if b"\0" in data:
            raise UnicodeDecodeError("utf-8", data, data.index(b"\0"), data.index(b"\0") + 1, "NUL byte")
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ArgumentError(
            FIELD,
            f"{shown} is binary (not UTF-8 text), so it cannot be sent as text; only text files and images "
            f"({', '.join(sorted(IMAGE_TYPES))}) can.",
        ) from None


def _over_text_budget(shown: str, chars: int, settings: Settings) -> ArgumentError:
    return ArgumentError(
        FIELD,
        f"{shown} brings the text files to at least {chars:,} characters, over the limit of "
        f"{settings.files_max_chars:,} for one call (GLM_FILES_MAX_CHARS). Send fewer or smaller files, "
        "or the parts that matter.",
    )
