"""`files` against a filesystem that is not a list of strings: walks that would never end, links that lead out
(or round in loops), a directory swapped for a link while it is read, FIFOs and devices, and refusals that
would name what the caller never sent.

Each item is driven from outside: real FIFOs, devices, symlinks and a real process swapping them, and the
server as a real stdio or HTTP process where the server's own behaviour is at stake (a walk of `/` that never
answers, a read of /dev/zero that eats the memory). Bounds are generous and only catch "never answers".
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.session import ClientRequestContext
from mcp.types import CallToolResult, ListRootsResult, Root

from glm_mcp.app import create_server
from glm_mcp.emulator import Emulator
from glm_mcp.tools.workspace import files
from tests.conftest import GENERAL_KEY, settings_for, upstream_calls
from tests.processes import COMMAND, http_server, server_env
from tests.test_tools import failed, ok

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.platform == "win32", reason="FIFOs, devices and symlinks as POSIX has them"),
]

ANSWERS_WITHIN_S = 60
"""Far longer than any of these calls takes; only a call that never answers (the bug) reaches it."""
SECRET = "OUTSIDE-SECRET-7f3a9c"
"""The content of every file outside the roots: it must never reach the upstream or a result."""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A root with a file, a link that leads out of it, a link that stays in it, and a secret beside it."""
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("def main() -> None:\n    print('hello')\n")
    (root / "notes.txt").write_text("some notes\n")
    outside = tmp_path / "secret_target.txt"
    outside.write_text(SECRET)
    (root / "escape.txt").symlink_to(outside)
    (root / "alias.py").symlink_to(root / "src" / "app.py")  # a link inside the root to a file inside it
    return root


@pytest.fixture(params=["descriptors", "paths"])
def opening(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways files are opened: beneath a root's descriptor (POSIX), and by checked paths (Windows)."""
    if request.param == "paths":
        monkeypatch.setattr(files, "DESCRIPTORS", False)
    return str(request.param)


def stdio_server(emulator: Emulator, tmp_path: Path, cwd: Path, **env: str) -> StdioServerParameters:
    """The real `glm-mcp` over stdio, started in `cwd`, its address space capped at 4 GiB: a read with no end
    (the bug /dev/zero shows) fails fast with MemoryError instead of taking the machine's memory."""
    variables = server_env(
        GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_DATA_DIR=str(tmp_path / "data"), **env
    )
    capped = (
        "import contextlib, os, resource, sys\n"
        "with contextlib.suppress(ValueError, OSError):  # macOS may not take it\n"
        "    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))\n"
        f"os.execv(sys.executable, [sys.executable, *{COMMAND[1:]!r}])"
    )
    return StdioServerParameters(command=sys.executable, args=["-c", capped], env=variables, cwd=str(cwd))


def sent_bodies(emulator: Emulator) -> str:
    return "\n".join(repr(exchange.body) for exchange in upstream_calls(emulator, "/chat/completions"))


def sent_files(emulator: Emulator) -> list[str]:
    """The paths of the file blocks of the last chat request."""
    body = upstream_calls(emulator, "/chat/completions")[-1].body
    assert body is not None
    text = str(body["messages"][-1]["content"])
    return [chunk.split('"', 1)[0] for chunk in text.split('<file path="')[1:]]


def only_names(message: str, *allowed: str) -> str:
    """`message` with what it may name taken out: what is left must name no path (no `/`)."""
    for name in sorted(allowed, key=len, reverse=True):
        message = message.replace(name, "")
    return message


async def call(client: Client, paths: list[str]) -> CallToolResult:
    """`chat` with `files=paths`, answered within the bound."""
    with anyio.fail_after(ANSWERS_WITHIN_S):
        return await client.call_tool("chat", {"prompt": "Look.", "files": paths})


# --- walks that would never end ----------------------------------------------------------------------------


async def test_a_pattern_that_starts_outside_every_root_is_refused_at_once_over_http(
    emulator: Emulator, project: Path
) -> None:
    """`/**/*.x` used to glob from `/` (through /proc/*/root, back to `/`) before the roots were checked."""
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_FILES_ROOTS=str(project))
    with http_server(env=env) as origin:
        async with Client(origin + "/mcp") as client:
            refused = failed(await call(client, ["/**/*.x"]))
            relative = failed(await call(client, ["../../../../../../../../../../**/*.x"]))
    for failure, sent in ((refused, "/**/*.x"), (relative, "../../../../../../../../../../**/*.x")):
        assert failure["field"] == "files" and f"{sent} is outside" in failure["message"]
        assert "/" not in only_names(failure["message"], sent, str(project)), failure["message"]
    assert upstream_calls(emulator, "/chat/completions") == []


async def test_a_walk_from_the_working_directory_up_to_the_top_is_refused_over_stdio(
    emulator: Emulator, project: Path, tmp_path: Path
) -> None:
    """Over stdio, with no roots declared, the working directory is the root: `../../…/**` leaves it."""
    up = "../" * len(project.parts) + "**/*.x"
    async with Client(stdio_server(emulator, tmp_path, project)) as client:
        failure = failed(await call(client, [up]))
    assert f"{up} is outside" in failure["message"] and "the server's working directory" in failure["message"]
    assert upstream_calls(emulator, "/chat/completions") == []


async def test_a_walk_of_a_whole_disk_stops_while_walking(emulator: Emulator, project: Path, tmp_path: Path) -> None:
    """A client may declare `/` its root: a `**` there is cut off by the walk's bounds, not walked to its end."""

    async def whole_disk(context: ClientRequestContext) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri="file:///", name="everything")])

    server = stdio_server(emulator, tmp_path, project)
    async with Client(server, mode="legacy", list_roots_callback=whole_disk) as client:
        failure = failed(await call(client, ["**/*.no-such-extension-7f3a9c"]))
    assert failure["field"] == "files"
    assert "narrow it" in failure["message"] or "matches no file" in failure["message"], failure["message"]
    assert upstream_calls(emulator, "/chat/completions") == []


async def test_links_to_directories_are_not_walked_so_loops_cannot_grow(
    emulator: Emulator, project: Path, tmp_path: Path
) -> None:
    """Two links to `.` made `loops/**/*.py` grow as 2^depth; a link on a path named in full is still followed."""
    loops = project / "loops"
    (loops / "sub").mkdir(parents=True)
    (loops / "x.py").write_text("x = 1\n")
    (loops / "sub" / "y.py").write_text("y = 2\n")
    (loops / "a").symlink_to(".")
    (loops / "b").symlink_to(".")
    (loops / "up").symlink_to("..")
    (loops / "self").symlink_to("self")  # a link to itself
    async with Client(stdio_server(emulator, tmp_path, project)) as client:
        walked = ok(await call(client, ["loops/**/*.py"]))
        assert sent_files(emulator) == ["loops/sub/y.py", "loops/x.py"]
        named = ok(await call(client, ["loops/a/b/a/x.py", "alias.py"]))
        assert sent_files(emulator) == ["loops/x.py", "src/app.py"]  # each named through links inside the root
        looped = failed(await call(client, ["loops/self"]))
    assert [f["path"] for f in walked["files"]] == ["loops/sub/y.py", "loops/x.py"]
    assert [f["path"] for f in named["files"]] == ["loops/x.py", "src/app.py"]
    assert "loops/self cannot be read" in looped["message"] and "loop" in looped["message"]


async def test_the_walk_stops_at_its_bounds_as_it_goes(
    emulator: Emulator, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, opening: str
) -> None:
    """The entries looked at and the files matched are counted while walking (lowered here to see them)."""
    many = project / "many"
    many.mkdir()
    for number in range(30):
        (many / f"f{number:02}.txt").write_text(f"{number}\n")
    monkeypatch.setattr(files, "MAX_ENTRIES", 20)
    async with Client(create_server(settings_for(emulator, GLM_FILES_ROOTS=str(project)))) as client:
        entries = failed(await call(client, ["many/*.md"]))
        monkeypatch.setattr(files, "MAX_ENTRIES", 1000)
        monkeypatch.setattr(files, "MAX_MATCHES", 10)
        matches = failed(await call(client, ["many/*.txt"]))
        monkeypatch.setattr(files, "WALK_SECONDS", -1.0)
        slow = failed(await call(client, ["many/*.txt"]))
    assert "'many/*.md' looks through more than 20 directory entries; narrow it" in entries["message"]
    assert "'many/*.txt' matches more than 10 files; narrow it" in matches["message"]
    assert "'many/*.txt' takes more than -1 s to look through; narrow it" in slow["message"]
    assert upstream_calls(emulator, "/chat/completions") == []


@pytest.fixture
def fifo(project: Path) -> Iterator[Path]:
    """`project/pipe.txt`, a FIFO with a writer waiting for a reader, so that a server that opens it to read
    (the bug) gets its text instead of blocking this test's process for ever."""
    path = project / "pipe.txt"
    os.mkfifo(path)

    def write() -> None:
        with contextlib.suppress(OSError):  # the reader that only unblocks it (below) may be gone first
            path.write_text("from the fifo\n")  # opening waits for a reader

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        yield path
    finally:
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))  # a reader at last: the writer's open returns
        writer.join(timeout=10)


async def test_each_way_of_opening_reads_inside_the_root_and_refuses_the_rest(
    emulator: Emulator, project: Path, fifo: Path, opening: str
) -> None:
    loops = project / "loops"
    loops.mkdir()
    (loops / "x.py").write_text("x = 1\n")
    (loops / "a").symlink_to(".")
    (project / "back").mkdir()
    (project / "back" / "up").symlink_to("..")
    async with Client(create_server(settings_for(emulator, GLM_FILES_ROOTS=str(project)))) as client:
        read = ok(await call(client, ["loops/**/*.py", "alias.py", "loops/a/x.py", "*.py"]))
        refused = {n: failed(await call(client, [n]))["message"] for n in ("escape.txt", "back/up/escape.txt")}
        special = failed(await call(client, [fifo.name]))
    assert [f["path"] for f in read["files"]] == ["loops/x.py", "src/app.py"]
    for name, message in refused.items():
        assert f"{name} is outside" in message and "secret_target" not in message
    assert "pipe.txt is a FIFO" in special["message"]


async def test_a_root_declared_through_a_link_takes_paths_spelled_either_way(
    emulator: Emulator, project: Path, tmp_path: Path
) -> None:
    """Paths are placed in the roots without looking at the disk, so a root is known by both its spellings
    (as `/tmp/…` and `/private/tmp/…` on macOS)."""
    declared = tmp_path / "declared"
    declared.symlink_to(project)
    async with Client(create_server(settings_for(emulator, GLM_FILES_ROOTS=str(declared)))) as client:
        read = ok(await call(client, [str(declared / "notes.txt"), str(project / "src" / "*.py")]))
    assert [f["path"] for f in read["files"]] == ["notes.txt", "src/app.py"]


# --- what is not a regular file ----------------------------------------------------------------------------


async def test_a_fifo_is_refused_at_once_and_passed_over_by_a_glob(
    emulator: Emulator, project: Path, tmp_path: Path
) -> None:
    """Opening a FIFO with no writer blocked the call forever."""
    os.mkfifo(project / "pipe.txt")
    async with Client(stdio_server(emulator, tmp_path, project)) as client:
        refused = failed(await call(client, ["pipe.txt"]))
        globbed = ok(await call(client, ["[np]*.txt"]))
        assert sent_files(emulator) == ["notes.txt"]
        nothing = failed(await call(client, ["pip*"]))
    assert "pipe.txt is a FIFO, not a regular file; only regular files are read" in refused["message"]
    assert [f["path"] for f in globbed["files"]] == ["notes.txt"]
    assert "the pattern 'pip*' matches no file" in nothing["message"]


async def test_dev_zero_under_a_declared_root_is_refused_not_read(
    emulator: Emulator, project: Path, tmp_path: Path
) -> None:
    """/dev/zero under a root the client declared was read until the server ran out of memory."""

    async def dev(context: ClientRequestContext) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri="file:///dev", name="devices")])

    async with Client(stdio_server(emulator, tmp_path, project), mode="legacy", list_roots_callback=dev) as client:
        relative = failed(await call(client, ["zero"]))
        absolute = failed(await call(client, ["/dev/zero"]))
        globbed = failed(await call(client, ["zer?"]))
    assert "zero is a character device, not a regular file" in relative["message"]
    assert "/dev/zero is a character device, not a regular file" in absolute["message"]
    assert "the pattern 'zer?' matches no file" in globbed["message"]
    assert upstream_calls(emulator, "/chat/completions") == []


# --- a directory swapped for a link while it is read -------------------------------------------------------

SWAPPER = textwrap.dedent(
    """
    import os, sys
    inside, parked_dir, parked_link = sys.argv[1:]
    while True:  # `inside` is by turns the real directory, nothing, and a link to the outside one
        os.rename(inside, parked_dir)
        os.rename(parked_link, inside)
        os.rename(inside, parked_link)
        os.rename(parked_dir, inside)
    """
)


@pytest.fixture
def swapping(project: Path, tmp_path: Path) -> Iterator[Path]:
    """`project/d` swapped, in a loop by another process, between a directory and a link to one outside."""
    (project / "d").mkdir()
    (project / "d" / "f.txt").write_text("inside\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f.txt").write_text(SECRET)
    parked_link = project / ".d-link"
    parked_link.symlink_to(outside)
    swapper = subprocess.Popen(
        [sys.executable, "-c", SWAPPER, str(project / "d"), str(project / ".d-dir"), str(parked_link)]
    )
    try:
        yield project
    finally:
        swapper.kill()
        swapper.wait()


async def test_a_directory_swapped_for_a_link_during_the_read_never_sends_the_outside(
    emulator: Emulator, swapping: Path
) -> None:
    """The path was checked, then read again by name: swapped in between, the read went outside. (Opening by
    checked paths, where there are no descriptors to open beneath, only narrows this window.)"""
    outcomes: dict[str, int] = {}
    async with Client(create_server(settings_for(emulator, GLM_FILES_ROOTS=str(swapping)))) as client:
        for _ in range(400):
            result = await call(client, ["d/f.txt"])
            text = str(result.content[0].text)  # type: ignore[union-attr]
            assert SECRET not in text
            outcome = "sent" if not result.is_error else str(failed(result)["message"])[:90]
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert SECRET not in sent_bodies(emulator)
    assert outcomes.get("sent", 0) > 0, outcomes
    assert any("outside" in outcome for outcome in outcomes), outcomes  # the race was met: the link was refused


# --- refusals name only what was sent ---------------------------------------------------------------------


@pytest.fixture
async def http_client(emulator: Emulator, project: Path) -> AsyncIterator[Client]:
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_FILES_ROOTS=str(project))
    with http_server(env=env) as origin:
        async with Client(origin + "/mcp") as client:
            yield client


async def test_a_refusal_names_only_what_the_caller_sent_and_the_roots(
    emulator: Emulator, project: Path, tmp_path: Path, http_client: Client
) -> None:
    """A remote caller could list directories: `/etc/*` answered with `/etc/adduser.conf … is outside`."""
    hidden = tmp_path / "outside" / "hidden_5e1d"
    hidden.parent.mkdir()
    hidden.symlink_to(tmp_path / "secret_target.txt")
    etc = failed(await call(http_client, ["/etc/*"]))
    beside = failed(await call(http_client, ["../outside/hidden_*"]))
    link = failed(await call(http_client, ["escape.txt"]))
    matched = failed(await call(http_client, ["*.txt"]))
    assert "/etc/* is outside" in etc["message"]
    assert "/" not in only_names(etc["message"], "/etc/*", str(project)), etc["message"]
    assert all(f"/etc/{name}" not in etc["message"] for name in os.listdir("/etc"))
    assert "../outside/hidden_* is outside" in beside["message"]
    assert "/" not in only_names(beside["message"], "../outside/hidden_*", str(project)), beside["message"]
    assert "hidden_5e1d" not in beside["message"] and "secret_target" not in beside["message"]
    assert "escape.txt is outside" in link["message"] and "secret_target" not in link["message"]
    assert "escape.txt (matched by '*.txt') is outside" in matched["message"]  # a name inside the root
    assert "secret_target" not in matched["message"]
    assert SECRET not in sent_bodies(emulator) and upstream_calls(emulator, "/chat/completions") == []
