"""The benchmark script still runs: `python -m bench --quick` exits 0 and prints every figure.

No timing is asserted: the figures are for BENCHMARKS.md, not for a pass/fail on a noisy machine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rigs.postgres_server import available

ROOT = Path(__file__).resolve().parent.parent
FIGURES = (
    "cold start (stdio",
    "idle rss (stdio",
    "per-call stdio p50",
    "per-call stdio p99",
    "per-call http p50 (raw JSON-RPC)",
    "per-call http p99 (raw JSON-RPC)",
    "per-call http p50 (SDK Client)",
    "per-call direct non-stream p50",
    "upstream client cpu per call (in process)",
    "server cpu per call, stdio: chat",
    "server cpu per call, stdio: list_jobs",
    "first progress after first chunk",
    "load 1 concurrent",
    "load 16 concurrent",
    "idle rss (http",
    "peak rss (http",
    "long generation client round trips (task path)",
    "long generation server cpu (task path)",
    *(
        f"registry sqlite {kind} {q} ({how})"
        for kind in ("write", "read")
        for q in ("p50", "p99")
        for how in ("sequential", "4 concurrent")
    ),
)
POSTGRES_FIGURES = (
    *(
        f"registry postgresql {kind} {q} ({how})"
        for kind in ("write", "read")
        for q in ("p50", "p99")
        for how in ("sequential", "4 concurrent")
    ),
    "replicas: one replica, server cpu per call",
    "replicas: one replica, wall",
    "replicas: 3 replicas behind the proxy, server cpu per call (summed over the replicas)",
    "replicas: 3 replicas behind the proxy, wall",
    "replicas: 3 replicas behind the proxy, proxy cpu per call",
    "replicas: server cpu per call, 3 replicas vs 1",
)


def test_quick_benchmark_runs_and_prints_every_figure() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"], cwd=ROOT, capture_output=True, text=True, timeout=360
    )
    assert run.returncode == 0, run.stderr[-3000:]
    why_not = available()  # without PostgreSQL its figures are skipped, and the run says so
    expected = FIGURES + (POSTGRES_FIGURES if why_not is None else ())
    missing = [name for name in expected if name not in run.stdout]
    assert not missing, run.stdout
    if why_not is None:  # every chat answered with its own prompt's answer, on one replica and on three
        runs = [line for line in run.stdout.splitlines() if line.startswith("  replicas ")]
        assert len(runs) == 4 and all(line.endswith("; 0 lost, 0 misrouted") for line in runs), runs
    else:
        assert "replicas: skipped" in run.stdout and "registry postgresql: skipped" in run.stdout
    assert "GLM_MAX_CONCURRENCY=1000" in run.stdout
    # One sample is no verdict: the quick run says so instead of reporting targets missed.
    assert "targets missed" not in run.stdout and "MISSED" not in run.stdout
    assert "targets: not judged: --quick takes one or a few samples" in run.stdout
