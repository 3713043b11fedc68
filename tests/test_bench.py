"""The benchmark still runs: `python -m bench` measures and prints each figure in its shape.

A smoke check, not a run: one section at the quick size (the job registry: SQLite in the benchmark's own process,
PostgreSQL when it can run here), in seconds. The full run is `python -m bench`; its figures are for
BENCHMARKS.md, and no timing is asserted here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from rigs.postgres_server import available

ROOT = Path(__file__).resolve().parent.parent
FIGURE = re.compile(
    r"^(?P<name>[^:\n]+): (?P<value>\S+) (?P<unit>\S+) vs floor \S+ (?P=unit) = \S+x.*\n"
    r"    command: .+\n    floor:   .+$",
    re.M,
)
"""A figure as `bench.figures.Figure.line` prints it: value, floor and ratio, then the two commands."""


def test_one_section_at_the_quick_size_prints_its_figures_in_shape() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "registry"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    assert out.startswith("$ python -m bench --quick --only registry\n"), out
    why_not = available()  # without PostgreSQL its part is skipped, and the run says why
    engines = ["sqlite"] if why_not else ["sqlite", "postgresql"]
    expected = {
        f"registry {engine} {kind} {q} ({how})"
        for engine in engines
        for kind in ("write", "read")
        for q in ("p50", "p99")
        for how in ("sequential", "4 concurrent")
    }
    figures = {match["name"]: match for match in FIGURE.finditer(out)}
    assert set(figures) == expected, out
    assert all(float(match["value"]) >= 0 and match["unit"] == "ms" for match in figures.values()), out
    assert ("registry postgresql: skipped" in out) == bool(why_not), out
    assert f"\n{len(expected)} figures in " in out, out
    # One sample is no verdict: a quick run says so instead of reporting targets missed.
    assert "targets: not judged: --quick" in out and "MISSED" not in out, out
