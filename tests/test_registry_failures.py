"""Nothing is lost in silence: a job registry on a full disk, on a read-only file system, or corrupt.

Real file systems, not permissions (the tests run as root, whom chmod does not stop): a small tmpfs
that fills up, and one remounted read-only. Each against a real server process and the emulator.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from glm_mcp.app import JOBS_FILE
from glm_mcp.emulator import Emulator
from glm_mcp.server.http import MCP_PATH
from tests.conftest import GENERAL_KEY
from tests.processes import http_server_process, server_env
from tests.test_tools import failed, ok

pytestmark = pytest.mark.anyio


@contextmanager
def mounted_tmpfs(size: str) -> Iterator[Path]:
    """A tmpfs of `size` on a new directory, unmounted afterwards; the test is skipped if mounting is refused."""
    path = Path(tempfile.mkdtemp(prefix="glm-mcp-mount-"))
    run = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if run.returncode != 0:
        path.rmdir()
        pytest.skip(f"mount refused ({run.stderr.decode().strip()}): these tests need a real full / read-only disk")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=True)
        path.rmdir()


def remount(path: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True, capture_output=True)


@contextmanager
def server(emulator: Emulator, data_dir: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_DATA_DIR=str(data_dir))
    with http_server_process(env=env) as running:
        yield running


async def every_job(client: Client) -> list[dict[str, Any]]:
    """All the jobs list_jobs has, page after page."""
    jobs: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = ok(await client.call_tool("list_jobs", {"limit": 100, **({"cursor": cursor} if cursor else {})}))
        jobs += page["jobs"]
        if not (cursor := page.get("next_cursor")):
            return jobs


def text(result: Any) -> str:
    return str(result.content[0].text)


async def test_on_a_full_disk_every_submit_keeps_its_id_and_nothing_reported_recorded_is_lost(
    emulator: Emulator,
) -> None:
    with mounted_tmpfs("256k") as disk:
        recorded: list[str] = []
        not_recorded: list[str] = []
        with server(emulator, disk) as (_, origin):
            async with Client(origin + MCP_PATH) as client:
                for i in range(400):  # each job grows the WAL by a few pages: 256 KiB fill up quickly
                    result = await client.call_tool("submit_async", {"prompt": f"job {i}"})
                    submitted = ok(result)
                    assert submitted["task_id"] and submitted["task_id"] in text(result)
                    if submitted.get("not_recorded"):
                        assert "disk is full" in submitted["not_recorded"]
                        assert "Not recorded in the job registry" in text(result) and "disk is full" in text(result)
                        not_recorded.append(submitted["task_id"])
                        if len(not_recorded) >= 5:
                            break
                    else:
                        recorded.append(submitted["task_id"])
                # This process still answers for the jobs it could not record.
                kept = ok(await client.call_tool("get_result", {"task_id": not_recorded[0], "wait_seconds": 5}))
                assert kept["status"] == "completed" and kept["not_recorded"]
        assert len(recorded) > 1 and not_recorded, (len(recorded), len(not_recorded))

        with server(emulator, disk) as (_, origin):  # a restart, the disk still full
            async with Client(origin + MCP_PATH) as client:
                listed = {job["job_id"] for job in await every_job(client)}
    assert set(recorded) <= listed, f"{len(set(recorded) - listed)} jobs reported recorded were lost"
    assert not set(not_recorded) & listed


@pytest.mark.parametrize("how_it_stopped", ["cleanly", "killed"])
async def test_a_read_only_registry_serves_every_job_it_has_and_says_a_new_one_is_not_recorded(
    emulator: Emulator, how_it_stopped: str
) -> None:
    count = 150
    emulator.config.async_delay = 0.0
    with mounted_tmpfs("16m") as disk:
        with server(emulator, disk) as (process, origin):
            async with Client(origin + MCP_PATH) as client:
                ids = [
                    ok(await client.call_tool("submit_async", {"prompt": f"job {i}"}))["task_id"] for i in range(count)
                ]
                fetched = ok(await client.call_tool("get_result", {"task_id": ids[0], "wait_seconds": 5}))
                assert fetched["status"] == "completed"
            if how_it_stopped == "killed":  # its -wal and -shm stay behind
                process.send_signal(signal.SIGKILL)
                process.wait()
        assert (disk / (JOBS_FILE + "-wal")).exists() == (how_it_stopped == "killed")
        remount(disk, "ro")

        polls_before = len(emulator.state.exchanges)
        with server(emulator, disk) as (_, origin):
            async with Client(origin + MCP_PATH) as client:
                started = time.monotonic()
                listed = await every_job(client)
                listed_in = time.monotonic() - started
                again = ok(await client.call_tool("get_result", {"task_id": ids[0], "wait_seconds": 0}))
                assert len(emulator.state.exchanges) == polls_before, "the stored result was fetched again"
                new = await client.call_tool("submit_async", {"prompt": "after the remount"})
    assert sorted(job["job_id"] for job in listed) == sorted(ids)
    assert listed_in < 3, f"listing a read-only registry took {listed_in:.1f} s"
    assert again["result"]["text"] == fetched["result"]["text"]
    submitted = ok(new)
    assert submitted["task_id"] and "read-only" in submitted["not_recorded"]
    assert "Not recorded" in text(new)


async def test_a_corrupt_registry_is_moved_aside_and_a_fresh_one_started(emulator: Emulator, tmp_path: Path) -> None:
    garbage = b"this is not a database, whatever wrote it " * 200
    (tmp_path / JOBS_FILE).write_bytes(garbage)
    (tmp_path / (JOBS_FILE + "-wal")).write_bytes(b"garbage wal " * 100)
    with server(emulator, tmp_path) as (process, origin):
        async with Client(origin + MCP_PATH) as client:
            result = await client.call_tool("submit_async", {"prompt": "into a fresh registry"})
            listed = ok(await client.call_tool("list_jobs", {}))
        process.terminate()
        log = process.communicate(timeout=10)[1].decode()
    submitted = ok(result)
    aside = [p for p in tmp_path.iterdir() if p.name.startswith(JOBS_FILE + ".corrupt-")]
    moved = min(aside, key=lambda p: len(p.name))
    assert sorted(p.name for p in aside) == [moved.name, moved.name + "-wal"]  # with its WAL
    assert moved.read_bytes() == garbage
    assert [job["job_id"] for job in listed["jobs"]] == [submitted["task_id"]] and not submitted.get("not_recorded")
    for message in (submitted["registry_notice"], text(result), log):
        assert str(tmp_path / JOBS_FILE) in message and str(moved) in message, message
    assert not listed.get("registry_notice"), "the notice is given once, to the next result"


def corrupt_behind_its_header(path: Path) -> bytes:
    """Overwrite every page of the SQLite file at `path` after the first (its header, its schema) with random
    bytes: SQLite opens it, and finds the corruption only at the first statement reading those pages."""
    data = path.read_bytes()
    page_size = int.from_bytes(data[16:18], "big")
    garbage = random.Random(23).randbytes(len(data) - page_size)
    path.write_bytes(data[:page_size] + garbage)
    return data[:page_size] + garbage


async def test_a_registry_corrupt_behind_a_valid_header_is_moved_aside_and_a_fresh_one_started(
    emulator: Emulator, tmp_path: Path
) -> None:
    emulator.config.async_delay = 0.0
    with server(emulator, tmp_path) as (process, origin):
        async with Client(origin + MCP_PATH) as client:
            for i in range(20):
                ok(await client.call_tool("submit_async", {"prompt": f"job {i}: " + "words " * 100}))
    assert not (tmp_path / (JOBS_FILE + "-wal")).exists()  # a clean stop leaves everything in the file
    corrupt = corrupt_behind_its_header(tmp_path / JOBS_FILE)
    assert corrupt.startswith(b"SQLite format 3\0")

    with server(emulator, tmp_path) as (process, origin):
        async with Client(origin + MCP_PATH) as client:
            first = await client.call_tool("submit_async", {"prompt": "into a fresh registry"})
            second = ok(await client.call_tool("submit_async", {"prompt": "and another"}))
            listed = ok(await client.call_tool("list_jobs", {}))
        process.terminate()
        log = process.communicate(timeout=10)[1].decode()
    submitted = ok(first)
    assert not submitted.get("not_recorded") and not second.get("not_recorded")
    (moved,) = [p for p in tmp_path.iterdir() if p.name.startswith(JOBS_FILE + ".corrupt-")]
    assert moved.read_bytes() == corrupt
    for message in (submitted["registry_notice"], text(first), log):
        assert str(tmp_path / JOBS_FILE) in message and str(moved) in message, message
    assert {job["job_id"] for job in listed["jobs"]} == {submitted["task_id"], second["task_id"]}

    with server(emulator, tmp_path) as (process, origin):  # a restart: the fresh registry, as it was left
        async with Client(origin + MCP_PATH) as client:
            listed_again = ok(await client.call_tool("list_jobs", {}))
            third = ok(await client.call_tool("submit_async", {"prompt": "after the restart"}))
    assert [job["job_id"] for job in listed_again["jobs"]] == [job["job_id"] for job in listed["jobs"]]
    assert not third.get("not_recorded") and not third.get("registry_notice")
    assert [p for p in tmp_path.iterdir() if p.name.startswith(JOBS_FILE + ".corrupt-")] == [moved]


async def unavailable(emulator: Emulator, data_dir: Path) -> tuple[dict[str, Any], str]:
    """What list_jobs answers on the registry in `data_dir` (a failure), and what a submit says it did not record."""
    with server(emulator, data_dir) as _running:
        async with Client(_running[1] + MCP_PATH) as client:
            listed = failed(await client.call_tool("list_jobs", {}))
            submitted = ok(await client.call_tool("submit_async", {"prompt": "not recorded"}))
    assert listed["error"] == "registry_unavailable"
    return listed, submitted["not_recorded"]


def other_programs_database(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE jobs (name TEXT, schedule TEXT)")  # a cron-like tool's, say
    db.close()


async def test_a_database_of_another_program_is_said_to_be_one(emulator: Emulator, tmp_path: Path) -> None:
    other_programs_database(tmp_path / JOBS_FILE)
    listed, not_recorded = await unavailable(emulator, tmp_path)
    for said in (listed["message"], not_recorded):
        assert "tables that are not this glm-mcp's" in said, said
    assert f"Move {tmp_path / JOBS_FILE} aside" in listed["hint"] and "writable" not in listed["hint"]


@pytest.mark.parametrize("in_the_way", ["data_dir", "owners"])
async def test_a_file_where_a_directory_should_be_is_named(emulator: Emulator, tmp_path: Path, in_the_way: str) -> None:
    data_dir = tmp_path / "data"
    if in_the_way == "data_dir":
        data_dir.write_text("a file, not the data directory")
        blocking = data_dir
    else:
        data_dir.mkdir()
        blocking = data_dir / "owners"
        blocking.write_text("a file, not the directory of the owners' locks")
    listed, not_recorded = await unavailable(emulator, data_dir)
    for said in (listed["message"], not_recorded):
        assert f"{blocking} is a file where a directory should be" in said, said
    assert f"Move {blocking} aside" in listed["hint"] and "writable" not in listed["hint"]


async def test_a_read_only_registry_is_said_to_be_read_only(emulator: Emulator) -> None:
    with mounted_tmpfs("1m") as disk:
        remount(disk, "ro")
        listed, not_recorded = await unavailable(emulator, disk)
    for said in (listed["message"], not_recorded):
        assert "read-only" in said, said
    assert f"Make {disk} writable" in listed["hint"]


async def test_a_corrupt_registry_that_cannot_be_moved_aside_is_said_to_be_both(emulator: Emulator) -> None:
    with mounted_tmpfs("4m") as disk:
        with server(emulator, disk) as (_, origin):
            async with Client(origin + MCP_PATH) as client:
                for i in range(20):
                    ok(await client.call_tool("submit_async", {"prompt": f"job {i}: " + "words " * 100}))
        corrupt_behind_its_header(disk / JOBS_FILE)
        remount(disk, "ro")
        listed, not_recorded = await unavailable(emulator, disk)
    assert "is corrupt" in listed["message"] and "read-only" in listed["message"]
    assert f"move {disk / JOBS_FILE} aside" in listed["hint"]
    assert "read-only" in not_recorded  # a write is refused before it reads anything
