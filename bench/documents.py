"""What `files` costs per document: a PDF, a DOCX and a 65 s WAV (three parts) made text through the platform's file
parser and speech-to-text, the first time and once read before, beside the same text sent as a text file.

The real `glm-mcp` over stdio (the SDK's `Client`), against the emulator in a process of its own, whose file parser
answers as the platform's does, a task done after its default delay (0.3 s), and whose speech-to-text answers at
once. Every round writes documents of its own (the round's number in their text), so each round pays a first read;
the three ways of sending each text (the text file, the document read first, the document read before) are called
one after the other within a round, so a noisy moment falls on all of them. The platform requests a first read
makes are counted from the server's own `usage` table.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mcp import Client, StdioServerParameters

from bench.figures import Figure, percentile
from bench.processes import GLM_MCP, PYTHON, emulator, server_env, shown
from rigs import documents

JOBS_FILE = "jobs.sqlite3"


@dataclass(frozen=True)
class _Kind:
    """One kind of document: its extension, how to make one saying `lines`, and the text it is read as."""

    name: str
    suffix: str
    make: Callable[[list[str]], bytes]
    read_as: Callable[[list[str]], str]


_KINDS = (
    _Kind("pdf", ".pdf", lambda lines: documents.pdf([lines]), "\n".join),
    _Kind("docx", ".docx", documents.docx, "\n".join),
    _Kind(
        "wav (65 s, 3 parts)",
        ".wav",
        lambda lines: documents.wav(65, {5 + 25 * i: line for i, line in enumerate(lines)}),
        " ".join,
    ),
)


@dataclass
class _Times:
    text: list[float] = field(default_factory=list)
    first: list[float] = field(default_factory=list)
    kept: list[float] = field(default_factory=list)


async def documents_cost(rounds: int) -> tuple[list[Figure], list[str]]:
    folder = Path(tempfile.mkdtemp(prefix="glm-mcp-bench-files-"))
    times = {kind.name: _Times() for kind in _KINDS}
    with emulator() as emu:
        env = server_env(emu.origin, GLM_FILES_ROOTS=str(folder))
        params = StdioServerParameters(command=PYTHON, args=GLM_MCP[1:], env=env)
        async with Client(params) as client:

            async def call(name: str, into: list[float] | None) -> None:
                start = time.perf_counter()
                result = await client.call_tool("chat", {"prompt": "Summarise it in a line.", "files": [name]})
                if result.is_error:
                    raise RuntimeError(f"files={name}: {result.content[0]}")
                if into is not None:
                    into.append(time.perf_counter() - start)

            for number in range(-1, rounds):  # round -1 warms the server up, and is not counted
                for kind in _KINDS:
                    lines = [f"Round {number}: the {kind.name} says hello", "costs fell", "sales rose"]
                    stem = f"r{number}-{kind.suffix[1:]}"
                    (folder / (stem + kind.suffix)).write_bytes(kind.make(lines))
                    (folder / (stem + ".txt")).write_text(kind.read_as(lines))
                    counted = times[kind.name] if number >= 0 else None
                    await call(stem + ".txt", counted.text if counted else None)
                    await call(stem + kind.suffix, counted.first if counted else None)
                    await call(stem + kind.suffix, counted.kept if counted else None)
        requests = _platform_requests(Path(env["GLM_DATA_DIR"]) / JOBS_FILE, rounds + 1)
    command = f"mcp.Client(StdioServerParameters: {shown(GLM_MCP)}).call_tool('chat', files=[<document>])"
    floor = "the same call with files=[<the same text as a .txt file>]"
    figures = []
    for kind in _KINDS:
        series = times[kind.name]
        for label, values in (("first read", series.first), ("read before", series.kept)):
            value, base = percentile(values, 0.5) * 1000, percentile(series.text, 0.5) * 1000
            figures.append(
                Figure(
                    f"files {kind.name} {label} p50",
                    value,
                    base,
                    "ms",
                    command,
                    floor,
                    detail=f"difference {value - base:+.1f} ms over {len(values)} rounds",
                )
            )
    notes = [
        f"Files: platform requests per first read (from the server's usage table): {requests}; a document read "
        "before makes none. The emulator's file parser finishes a task 0.3 s after it is created.",
    ]
    return figures, notes


def _platform_requests(registry: Path, reads: int) -> str:
    with sqlite3.connect(registry) as db:
        rows = db.execute("SELECT model, sum(calls) FROM usage WHERE tool = 'files' GROUP BY model").fetchall()
    return ", ".join(f"{model} {count / reads:g}" for model, count in sorted(rows)) or "none"
