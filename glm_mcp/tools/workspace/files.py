"""The `files` argument: paths and glob patterns inside the allowed roots, read and checked before anything is sent.

Text files become delimited blocks naming each file (its path relative to its root, a language
from its extension) appended to the user's message; images (png, jpeg, webp, gif) become image
parts for a vision model. Documents (PDF, Word, Excel, PowerPoint) and recordings (WAV, MP3) are
read and checked here (`formats.py`), and become text through the platform's file parser and
speech-to-text once all files are read (`convert.py`). Whatever cannot be sent whole (a path outside
the roots, a glob that matches nothing, a binary file or a format the platform cannot read, an image
over the platform's limit or for a model that cannot see, a total past a budget) is refused with an
`ArgumentError` naming the file and the limit: nothing is ever cut, except a document's text, whose
result then says which part was sent.

A filesystem is not a list of strings, so a path is taken in three steps, none of which leaves the roots:

1. `Roots.places` puts it in the roots by path logic alone (`..` is taken as written): a path or
   pattern that starts outside every root is refused before anything is looked at. A refusal repeats
   only what the caller sent, names inside the roots, and the roots.
2. A glob is walked from its root with `os.scandir`, through real directories only: a link to a
   directory is never gone through (so links to `.` cannot make `**` grow), and the walk stops at
   MAX_ENTRIES entries looked at, WALK_SECONDS or MAX_MATCHES files, checked as it goes.
3. Each file is opened once, beneath a descriptor of its root, one name at a time with O_NOFOLLOW.
   A link met on the way is followed only when what it names is inside the same root (resolved by
   the same steps, at most LINK_HOPS links); a link that leads out is refused. So swapping a
   directory for a link between a check and the read cannot lead out. Only a regular file is read
   (it is opened with O_NONBLOCK, so a FIFO cannot block the call), from that descriptor, and never
   more than its budget plus one byte.

Where files cannot be opened beneath a descriptor (`DESCRIPTORS` is false: Windows), a path is
resolved with `os.path.realpath`, checked, opened, and the file opened is checked to be the one
resolved (`os.path.samestat`).
"""

from __future__ import annotations

import base64
import errno
import fnmatch
import glob
import os
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from types import TracebackType
from typing import Literal

from glm_mcp.config import Settings
from glm_mcp.errors import ArgumentError
from glm_mcp.glm.models import IMAGE_MAX_BYTES, IMAGE_TYPES, sees_images
from glm_mcp.glm.types import ContentPart, ImagePart, MediaURL, Message, TextPart
from glm_mcp.tools.answer import SentFile
from glm_mcp.tools.workspace import formats
from glm_mcp.tools.workspace.formats import Document, Recording
from glm_mcp.tools.workspace.roots import Place, Roots

__all__ = [
    "DESCRIPTORS",
    "FIELD",
    "LANGUAGES",
    "LINK_HOPS",
    "MAX_ENTRIES",
    "MAX_MATCHES",
    "WALK_SECONDS",
    "Attachments",
    "language",
    "read_files",
]

FIELD = "files"
MAX_MATCHES = 1000
"""Files one glob may bring in: a pattern such as `**/*` in a large tree is a mistake, not a request."""
MAX_ENTRIES = 100_000
"""Directory entries the globs of one call may look at; past it the pattern is refused, not walked on."""
WALK_SECONDS = 10.0
"""How long the globs of one call may walk: a tree too slow to walk is refused, not waited on."""
LINK_HOPS = 40
"""Links followed to open one file (Linux's own limit); more is a loop."""
DESCRIPTORS = (
    {os.open, os.stat, os.readlink} <= os.supports_dir_fd
    and os.scandir in os.supports_fd
    and hasattr(os, "O_NOFOLLOW")
    and hasattr(os, "O_DIRECTORY")
)
"""Whether files are opened beneath a descriptor of their root (Linux, macOS, the BSDs), else by a checked path."""

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

    blocks: list[str] = field(default_factory=list)
    """A block per text file, document and recording, in the order named; a document's or a recording's is ""
    until `convert.py` fills it with its text."""
    images: list[tuple[str, ImagePart, int]] = field(default_factory=list)
    """(path, part, bytes) of each image."""
    sent: list[SentFile] = field(default_factory=list)
    conversions: list[Document | Recording] = field(default_factory=list)
    """Documents and recordings read, still to become text."""
    text_chars: int = 0
    """Characters of the text files (what they used of GLM_FILES_MAX_CHARS)."""
    pieces: list[tuple[int, int | ImagePart]] = field(default_factory=list)
    """Each file in the order read: its index in `sent`, and its block's index in `blocks` or its image part."""

    @property
    def text(self) -> str:
        return "\n\n".join(block for block in self.blocks if block)

    def each(self) -> list[Attachments]:
        """One `Attachments` per file, in the order read: what a batch sends as one request each (documents and
        recordings after `convert.py` has filled their blocks)."""
        return [
            Attachments(blocks=[self.blocks[piece]], sent=[self.sent[sent]], pieces=[(0, 0)])
            if isinstance(piece, int)
            else Attachments(images=[(self.sent[sent].path, piece, self.sent[sent].bytes)], sent=[self.sent[sent]],
                             pieces=[(0, piece)])
            for sent, piece in self.pieces
        ]  # fmt: skip

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


_Kind = Literal["file", "dir", "link", "other"]
"""What a directory entry is, not following a link: a walk goes into a `dir` only, and reads a `file` or `link`."""
_Reason = Literal["missing", "directory", "special", "outside", "loop", "changed"]

_CHUNK = 1024 * 1024
_FILE_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_NOINHERIT", 0)
)
_CONVERTED = formats.DOCUMENTS.keys() | formats.AUDIO.keys() | formats.UNREADABLE.keys()
_MOVED = (errno.ENOENT, errno.ELOOP, errno.ENOTDIR, errno.EMLINK)
"""What opening a name gives when it was replaced (by a link, or removed) since it was looked at."""


def read_files(patterns: list[str], roots: Roots, settings: Settings, model: str) -> Attachments:
    """Read every file `patterns` names inside `roots`; `ArgumentError` for the first that cannot be sent whole.

    Every pattern is placed in the roots first, so one that starts outside them is refused before anything
    is looked at; then every file is found and opened (a link that leads out is refused whatever comes
    before it), and only then read, each opened again the same way and read from that descriptor."""
    placed = [_placed(pattern.strip(), roots) for pattern in patterns]
    with _Reading(roots, settings, model) as reading:
        found = [file for pattern, places in placed for file in reading.find(pattern, places)]
        for file in found:
            reading.read(file)
        return reading.attachments()


def language(path: PurePath) -> str:
    """The language of a file, from its extension (or its name, for Dockerfile and Makefile)."""
    return LANGUAGES.get(path.suffix.lower()) or _NAMED.get(path.name.lower(), "text")


def _placed(pattern: str, roots: Roots) -> tuple[str, list[Place]]:
    """`pattern` and where it lies in the roots; refused, repeating only it and the roots, when outside them."""
    if not pattern:
        raise ArgumentError(FIELD, "it has an empty entry; give paths or glob patterns such as src/**/*.py.")
    places = roots.places(os.path.expanduser(pattern))
    if not places:
        raise ArgumentError(
            FIELD,
            f"{pattern} is outside the directories files may be read from: {roots.describe()}. Give paths inside "
            "them (a relative path is taken from each).",
        )
    return pattern, places


class _Unreadable(Exception):
    """Why a name in a root is not opened; `_Reading` says it with the name the caller knows."""

    def __init__(self, reason: _Reason, what: str = "") -> None:
        super().__init__(reason)
        self.reason: _Reason = reason
        self.what = what
        """For `special`: what the file is ("a FIFO", "a character device", ...)."""


@dataclass(slots=True)
class _Walk:
    """What the globs of one call may still look at."""

    entries: int = field(default_factory=lambda: MAX_ENTRIES)
    deadline: float = field(default_factory=lambda: time.monotonic() + WALK_SECONDS)

    def look(self, pattern: str) -> None:
        self.entries -= 1
        if self.entries < 0:
            raise ArgumentError(
                FIELD,
                f"the pattern {pattern!r} looks through more than {MAX_ENTRIES:,} directory entries; narrow it "
                "(start it from the directory the files are in).",
            )
        if time.monotonic() > self.deadline:
            raise ArgumentError(
                FIELD,
                f"the pattern {pattern!r} takes more than {WALK_SECONDS:g} s to look through; narrow it "
                "(start it from the directory the files are in).",
            )


class _Root:
    """One root, for one call: its files are found and opened without leaving it."""

    def __init__(self, path: PurePath, named: PurePath) -> None:
        self.path = path
        self.named = named
        self._descriptors = DESCRIPTORS
        self._fd: int | None = None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def file(self, names: Sequence[str]) -> tuple[int, tuple[str, ...]]:
        """An open descriptor of the regular file `names` leads to, and its names with links resolved."""
        if self._descriptors:
            return self._open_beneath(names, directory=False)
        return self._open_checked(names)

    def directory(self, names: Sequence[str]) -> tuple[str, ...]:
        """The names of the directory `names` leads to, links resolved (a walk starts there)."""
        if self._descriptors:
            fd, real = self._open_beneath(names, directory=True)
            os.close(fd)
            return real
        real, status = self._resolve(names)
        if not stat.S_ISDIR(status.st_mode):
            raise _Unreadable("missing")
        return real

    def entries(self, names: Sequence[str]) -> list[tuple[str, _Kind]]:
        """The entries of the directory `names` (resolved names, from `directory` or a walk)."""
        if self._descriptors:
            fd, _ = self._open_beneath(names, directory=True)
            try:
                with os.scandir(fd) as listing:  # scandir takes its own copy of the descriptor
                    return [(entry.name, _kind(entry)) for entry in listing]
            finally:
                os.close(fd)
        path = os.path.join(self.path, *names)
        if os.path.normcase(os.path.realpath(path)) != os.path.normcase(path):  # not the directory the walk found
            return []
        with os.scandir(path) as listing:
            return [(entry.name, _kind(entry)) for entry in listing]

    def _root_fd(self) -> int:
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
            except (FileNotFoundError, NotADirectoryError):
                raise _Unreadable("missing") from None
        return self._fd

    def _open_beneath(self, names: Sequence[str], *, directory: bool) -> tuple[int, tuple[str, ...]]:
        """`names` opened one at a time from the root's descriptor, never following a link the system way: a link
        is read and its target, if inside the root, is walked again from the root."""
        root = fd = self._root_fd()
        pending = list(reversed(names))  # a stack: the next name last
        done: list[str] = []
        hops = 0
        try:
            while pending:
                name = pending.pop()
                if name in ("", "."):
                    continue
                if name == "..":  # only a link's target has them (`Roots.places` removed the caller's)
                    if not done:
                        raise _Unreadable("outside")
                    pending += reversed(done[:-1])
                    done.clear()
                    fd = _back_to(root, fd)
                    continue
                try:
                    status = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except (FileNotFoundError, NotADirectoryError):
                    raise _Unreadable("missing") from None
                if stat.S_ISLNK(status.st_mode):
                    hops += 1
                    if hops > LINK_HOPS:
                        raise _Unreadable("loop")
                    try:
                        target = os.readlink(name, dir_fd=fd)
                    except OSError:  # no longer a link
                        raise _Unreadable("changed") from None
                    pending += reversed(self._target(done, target))
                    done.clear()
                    fd = _back_to(root, fd)
                    continue
                want_directory = directory or bool(pending)
                if want_directory and not stat.S_ISDIR(status.st_mode):
                    raise _Unreadable("missing")
                if not want_directory:
                    _check_regular(status.st_mode)
                flags = os.O_NOFOLLOW | (os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC if want_directory else _FILE_FLAGS)
                try:
                    opened = os.open(name, flags, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in _MOVED:
                        raise _Unreadable("changed") from None
                    raise
                _back_to(root, fd)
                fd = opened
                if not os.path.samestat(status, os.fstat(fd)):
                    raise _Unreadable("changed")
                done.append(name)
            if fd == root:  # `names` is the root itself
                if directory:
                    return os.dup(root), ()
                raise _Unreadable("directory")
            return fd, tuple(done)
        except BaseException:
            _back_to(root, fd)
            raise

    def _target(self, done: list[str], target: str) -> list[str]:
        """The names, from the root, of a link's `target` (the link is in the directory `done`)."""
        if not os.path.isabs(target):
            return [*done, *PurePath(target).parts]
        normal = PurePath(os.path.normpath(target))
        for spelling in (self.path, self.named):
            if normal.is_relative_to(spelling):
                return list(normal.relative_to(spelling).parts)
        raise _Unreadable("outside")

    def _resolve(self, names: Sequence[str]) -> tuple[tuple[str, ...], os.stat_result]:
        """Without descriptors: `names` resolved by `os.path.realpath`, checked to be inside the root, and stat-ed."""
        real = PurePath(os.path.realpath(os.path.join(self.path, *names)))
        if not real.is_relative_to(self.path):
            raise _Unreadable("outside")
        try:
            status = os.stat(real)
        except (FileNotFoundError, NotADirectoryError):
            raise _Unreadable("missing") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _Unreadable("loop") from None
            raise
        return real.relative_to(self.path).parts, status

    def _open_checked(self, names: Sequence[str]) -> tuple[int, tuple[str, ...]]:
        """Without descriptors: resolved and checked, opened, then resolved and checked again, the file opened
        being the one found both times (a narrower window than none, not the descriptors' guarantee)."""
        real, status = self._resolve(names)
        _check_regular(status.st_mode)
        fd = os.open(os.path.join(self.path, *real), _FILE_FLAGS)
        try:
            opened = os.fstat(fd)
            again, status = self._resolve(real)
            if again != real or not (os.path.samestat(status, opened) and stat.S_ISREG(opened.st_mode)):
                raise _Unreadable("changed")
        except BaseException:
            os.close(fd)
            raise
        return fd, real


def _back_to(root: int, fd: int) -> int:
    """Close `fd` unless it is the root's own; the root's, to start from again."""
    if fd != root:
        os.close(fd)
    return root


def _check_regular(mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise _Unreadable("directory")
    what = (
        "a FIFO" if stat.S_ISFIFO(mode)
        else "a character device" if stat.S_ISCHR(mode)
        else "a block device" if stat.S_ISBLK(mode)
        else "a socket" if stat.S_ISSOCK(mode)
        else "a special file"
    )  # fmt: skip
    raise _Unreadable("special", what)


def _kind(entry: os.DirEntry[str]) -> _Kind:
    try:
        if entry.is_symlink() or getattr(entry, "is_junction", lambda: False)():
            return "link"
        if entry.is_dir(follow_symlinks=False):
            return "dir"
        if entry.is_file(follow_symlinks=False):
            return "file"
    except OSError:  # gone since it was listed
        pass
    return "other"


def _glob(root: _Root, names: tuple[str, ...], pattern: str, walk: _Walk) -> list[tuple[str, ...]]:
    """The files and links below `root` that the glob `names` matches, sorted.

    The names before the first wildcard lead to the directory the walk starts from (through links inside the
    root); from there the pattern is matched as it goes down, one name at a time, as the set of its parts
    still to match (a `**` may match no directory or several), so each directory is looked at once."""
    split = next(i for i, name in enumerate(names) if glob.has_magic(name))
    try:
        start = root.directory(names[:split])
    except _Unreadable as exc:
        if exc.reason == "outside":
            raise
        return []
    parts = names[split:]
    matches: list[tuple[str, ...]] = []
    stack = [(start, _closure(parts, {0}))]
    while stack:
        where, states = stack.pop()
        try:
            listed = root.entries(where)
        except (_Unreadable, OSError):  # gone or unreadable since it was listed: passed over, as glob does
            continue
        for name, kind in listed:
            walk.look(pattern)
            after = _step(parts, states, name)
            if len(parts) in after and kind in ("file", "link"):
                matches.append((*where, name))
                if len(matches) > MAX_MATCHES:
                    raise ArgumentError(
                        FIELD, f"the pattern {pattern!r} matches more than {MAX_MATCHES:,} files; narrow it."
                    )
            if kind == "dir" and any(state < len(parts) for state in after):
                stack.append(((*where, name), after))
    return sorted(matches, key="/".join)


def _step(parts: tuple[str, ...], states: frozenset[int], name: str) -> frozenset[int]:
    """The parts of the pattern still to match below `name`, given those still to match where it is."""
    after: set[int] = set()
    for state in states:
        if state == len(parts):
            continue
        part = parts[state]
        if part == "**":
            if not name.startswith("."):
                after.add(state)
        elif (part.startswith(".") or not name.startswith(".")) and fnmatch.fnmatch(name, part):
            after.add(state + 1)
    return _closure(parts, after)


def _closure(parts: tuple[str, ...], states: set[int]) -> frozenset[int]:
    """`states` and those a `**` reaches by matching no directory."""
    result = set(states)
    todo = list(states)
    while todo:
        state = todo.pop()
        if state < len(parts) and parts[state] == "**" and state + 1 not in result:
            result.add(state + 1)
            todo.append(state + 1)
    return frozenset(result)


@dataclass(frozen=True, slots=True)
class _Found:
    """A regular file to read: its root, its names there (links resolved), and how the caller knows it."""

    root: _Root
    names: tuple[str, ...]
    given: str


class _Reading:
    """The files of one call, read one at a time, with what they add up to so far."""

    def __init__(self, roots: Roots, settings: Settings, model: str) -> None:
        self.roots = roots
        self.settings = settings
        self.model = model
        self.walk = _Walk()
        self.blocks: list[str] = []
        self.images: list[tuple[str, ImagePart, int]] = []
        self.sent: list[SentFile] = []
        self.conversions: list[Document | Recording] = []
        self.pieces: list[tuple[int, int | ImagePart]] = []
        self.chars = self.image_bytes = self.converted_bytes = 0
        self.audio_seconds = 0.0
        self.seen: set[PurePath] = set()
        self.opened: dict[PurePath, _Root] = {}
        self.named: dict[PurePath, PurePath] = dict(zip(roots.paths, roots.named or roots.paths, strict=True))

    def __enter__(self) -> _Reading:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        for root in self.opened.values():
            root.close()

    def attachments(self) -> Attachments:
        return Attachments(self.blocks, self.images, self.sent, self.conversions, self.chars, self.pieces)

    def find(self, pattern: str, places: list[Place]) -> list[_Found]:
        """The files `pattern` names in `places` (where `Roots.places` put it), each opened once to check it."""
        found: list[_Found] = []
        if any(glob.has_magic(name) for name in places[0].parts):
            matched = False
            for place in places:
                root = self._root(place.root)
                try:
                    matches = _glob(root, place.parts, pattern, self.walk)
                except _Unreadable as exc:
                    raise self._refusal(pattern, exc) from None
                except OSError as exc:  # the root, or the directory the walk starts from, cannot be opened
                    raise _cannot_read(pattern, exc) from None
                for names in matches:
                    given = f"{'/'.join(names)} (matched by {pattern!r})"
                    file = self._check(root, names, given, skip=("missing", "directory", "special", "loop"))
                    if file is not None:
                        matched = True
                        found += [file] if self._new(file) else []
            if not matched:
                raise ArgumentError(FIELD, f"the pattern {pattern!r} matches no file in {self.roots.describe()}.")
            return found
        for place in places:  # a relative path is read from the first root that has it
            file = self._check(self._root(place.root), place.parts, pattern, skip=("missing",))
            if file is not None:
                return [file] if self._new(file) else []
        raise self._refusal(pattern, _Unreadable("missing"))

    def read(self, file: _Found) -> None:
        """Read `file` into the call, within its budgets, from a descriptor opened beneath its root again."""
        try:
            fd, names = file.root.file(file.names)
        except _Unreadable as exc:
            raise self._refusal(file.given, exc) from None
        except OSError as exc:
            raise _cannot_read(file.given, exc) from None
        self._send(fd, names)

    def _root(self, path: PurePath) -> _Root:
        if path not in self.opened:
            self.opened[path] = _Root(path, self.named.get(path, path))
        return self.opened[path]

    def _check(self, root: _Root, names: Sequence[str], given: str, skip: tuple[_Reason, ...]) -> _Found | None:
        """`names` in `root` as a regular file to read; None when it is not one for a reason in `skip` (a glob
        passes over what is not a file, as glob does; a relative path is looked for in the next root)."""
        try:
            fd, real = root.file(names)
        except _Unreadable as exc:
            if exc.reason in skip:
                return None
            raise self._refusal(given, exc) from None
        except OSError as exc:
            raise _cannot_read(given, exc) from None
        os.close(fd)
        return _Found(root, real, given)

    def _new(self, file: _Found) -> bool:
        """Whether `file` is not already among those to read (named twice, or by two patterns: sent once)."""
        path = PurePath(file.root.path, *file.names)
        if path in self.seen:
            return False
        self.seen.add(path)
        return True

    def _refusal(self, name: str, exc: _Unreadable) -> ArgumentError:
        where = self.roots.describe()
        messages: dict[_Reason, str] = {
            "missing": f"{name} does not exist in {where}.",
            "directory": f"{name} is a directory; name its files, or a glob such as {name.rstrip('/')}/**/*.py.",
            "special": f"{name} is {exc.what}, not a regular file; only regular files are read.",
            "outside": f"{name} is outside the directories files may be read from (a link on its way leads out of "
            f"them): {where}.",
            "loop": f"{name} cannot be read: its links go round in a loop.",
            "changed": f"{name} changed while it was being opened; call again.",
        }
        return ArgumentError(FIELD, messages[exc.reason])

    def _send(self, fd: int, names: tuple[str, ...]) -> None:
        """Read the open regular file `fd` (at `names` in its root) into the call; closes `fd`."""
        try:
            path = PurePath(*names)
            shown = "/".join(names)
            size = os.fstat(fd).st_size
            media_type = IMAGE_TYPES.get(path.suffix.lower())
            if media_type is not None:
                self._check_image(shown, size)
                data = _read(fd, min(IMAGE_MAX_BYTES, self.settings.files.max_image_bytes - self.image_bytes))
                self._check_image(shown, len(data))  # it grew since fstat
                _check_magic(shown, data, media_type)
                self.image_bytes += len(data)
                part = ImagePart(type="image_url", image_url=MediaURL(url=base64.b64encode(data).decode("ascii")))
                self.images.append((shown, part, len(data)))
                self.sent.append(SentFile(path=shown, kind="image", bytes=len(data)))
                self.pieces.append((len(self.sent) - 1, part))
                return
            suffix = path.suffix.lower()
            if suffix not in LANGUAGES and suffix not in _CONVERTED and hasattr(os, "pread"):
                suffix = formats.sniffed(os.pread(fd, 16, 0)) or suffix  # a document named without its extension
            if suffix in formats.UNREADABLE:
                raise formats.unreadable(shown, formats.UNREADABLE[suffix])
            if suffix in formats.DOCUMENTS:
                self._document(fd, shown, formats.DOCUMENTS[suffix], size)
                return
            if suffix in formats.AUDIO:
                self._recording(fd, shown, formats.AUDIO[suffix], size)
                return
            allowed = (self.settings.files.max_chars - self.chars) * 4  # a UTF-8 character is at most 4 bytes
            if size > allowed:
                raise _over_text_budget(shown, self.chars + size // 4, self.settings)
            data = _read(fd, allowed)
            if len(data) > allowed:  # it grew since fstat
                raise _over_text_budget(shown, self.chars + len(data) // 4, self.settings)
            text = _text(shown, data)
            self.chars += len(text)
            if self.chars > self.settings.files.max_chars:
                raise _over_text_budget(shown, self.chars, self.settings)
            self.blocks.append(f'<file path="{shown}" language="{language(path)}">\n{text}\n</file>')
            self.sent.append(SentFile(path=shown, kind="text", bytes=len(data), chars=len(text)))
            self.pieces.append((len(self.sent) - 1, len(self.blocks) - 1))
        except OSError as exc:
            raise _cannot_read("/".join(names), exc) from None
        finally:
            os.close(fd)

    def _document(self, fd: int, shown: str, file_type: str, size: int) -> None:
        """Read a document to send to the file parser, checked to be what its extension says."""
        what = f"the file parser's limit of {formats.DOCUMENT_MAX_BYTES:,} bytes (50 MiB) for one document"
        data = self._read_converted(fd, shown, size, formats.DOCUMENT_MAX_BYTES, what)
        formats.check_document(shown, data, file_type)
        self.converted_bytes += len(data)
        self.conversions.append(Document(shown, data, file_type, len(self.blocks), len(self.sent)))
        self.pieces.append((len(self.sent), len(self.blocks)))
        self.blocks.append("")
        self.sent.append(SentFile(path=shown, kind="document", bytes=len(data)))

    def _recording(self, fd: int, shown: str, media_type: str, size: int) -> None:
        """Read a recording and cut it into the parts speech-to-text takes."""
        what = f"the limit of {formats.MAX_CONVERTED_BYTES:,} bytes for one call"
        data = self._read_converted(fd, shown, size, formats.MAX_CONVERTED_BYTES, what)
        parts, seconds = formats.recording_parts(shown, data, media_type)
        if self.audio_seconds + seconds > formats.MAX_AUDIO_SECONDS:
            raise ArgumentError(
                FIELD,
                f"{shown} brings the recordings to {self.audio_seconds + seconds:,.0f} s, over the limit of "
                f"{formats.MAX_AUDIO_SECONDS:,.0f} s one call may have transcribed. Send fewer or shorter ones.",
            )
        self.audio_seconds += seconds
        self.converted_bytes += len(data)
        digest = formats.content_hash(data)
        entry = Recording(shown, digest, len(data), parts, media_type, seconds, len(self.blocks), len(self.sent))
        self.conversions.append(entry)
        self.pieces.append((len(self.sent), len(self.blocks)))
        self.blocks.append("")
        self.sent.append(SentFile(path=shown, kind="audio", bytes=len(data)))

    def _read_converted(self, fd: int, shown: str, size: int, per_file: int, what: str) -> bytes:
        """A document's or a recording's bytes, within `per_file` and what the call may still read of them."""
        left = formats.MAX_CONVERTED_BYTES - self.converted_bytes
        self._check_converted(shown, size, per_file, left, what)
        data = _read(fd, min(per_file, left))
        self._check_converted(shown, len(data), per_file, left, what)  # it grew since fstat
        return data

    def _check_converted(self, shown: str, size: int, per_file: int, left: int, what: str) -> None:
        if size > per_file:
            raise ArgumentError(FIELD, f"{shown} is {size:,} bytes, over {what}.")
        if size > left:
            raise ArgumentError(
                FIELD,
                f"{shown} brings the documents and recordings to {self.converted_bytes + size:,} bytes, over the "
                f"limit of {formats.MAX_CONVERTED_BYTES:,} for one call. Send fewer or smaller ones.",
            )

    def _check_image(self, shown: str, size: int) -> None:
        settings = self.settings
        if not sees_images(self.model):
            raise ArgumentError(
                FIELD,
                f"{shown} is an image, and {self.model} cannot see images. Pass model={settings.models.vision!r} "
                "(GLM_VISION_MODEL), or leave the image out.",
            )
        if size > IMAGE_MAX_BYTES:
            raise ArgumentError(
                FIELD,
                f"the image {shown} is {size:,} bytes, over the platform's limit of {IMAGE_MAX_BYTES:,} (5 MB).",
            )
        if self.image_bytes + size > settings.files.max_image_bytes:
            raise ArgumentError(
                FIELD,
                f"{shown} brings the images to {self.image_bytes + size:,} bytes, over the limit of "
                f"{settings.files.max_image_bytes:,} for one call (GLM_FILES_MAX_IMAGE_BYTES). Send fewer images.",
            )


def _read(fd: int, limit: int) -> bytes:
    """At most `limit` + 1 bytes of `fd`: one byte more than allowed says the file is over, whatever its size said."""
    chunks: list[bytes] = []
    left = limit + 1
    while left > 0:
        chunk = os.read(fd, min(left, _CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _check_magic(shown: str, data: bytes, media_type: str) -> None:
    head = data[:16]
    if media_type == "image/webp":
        fits = head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    else:
        fits = any(head.startswith(magic) for magic in _MAGIC[media_type])
    if not fits:
        raise ArgumentError(FIELD, f"{shown} is named as an image ({media_type}) but its content is not one.")


def _text(shown: str, data: bytes) -> str:
    try:
        if b"\0" in data:
            raise UnicodeDecodeError("utf-8", data, data.index(b"\0"), data.index(b"\0") + 1, "NUL byte")
        return data.decode("utf-8")
    except UnicodeDecodeError:
        name = formats.binary_name(data)
        if name is not None:
            raise formats.unreadable(f"{shown} is binary: it", name) from None
        raise ArgumentError(
            FIELD,
            f"{shown} is binary (not UTF-8 text), so it cannot be sent as text; only text files, images "
            f"({', '.join(sorted(IMAGE_TYPES))}), documents and recordings can.",
        ) from None


def _cannot_read(name: str, exc: OSError) -> ArgumentError:
    return ArgumentError(FIELD, f"{name} cannot be read: {exc.strerror or type(exc).__name__}.")


def _over_text_budget(shown: str, chars: int, settings: Settings) -> ArgumentError:
    return ArgumentError(
        FIELD,
        f"{shown} brings the text files to at least {chars:,} characters, over the limit of "
        f"{settings.files.max_chars:,} for one call (GLM_FILES_MAX_CHARS). Send fewer or smaller files, "
        "or the parts that matter.",
    )
