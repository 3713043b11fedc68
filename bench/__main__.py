"""`python -m bench [--quick] [--only SECTION ...] [--markdown FILE]`: run the benchmarks, print every figure."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import anyio

from bench import batch, breakdown, context, documents, load, measure, registry, replicas, tasks
from bench.figures import Figure, machine, markdown
from bench.processes import BARE_SERVER, GLM_MCP, emulator, shown

SECTIONS = (
    "cold-start", "per-call", "breakdown", "load", "streaming", "context", "tasks", "registry", "replicas", "documents",
    "batch",
)  # fmt: skip


@dataclass(frozen=True)
class Size:
    cold_starts: int
    calls: int
    warmup: int
    load_levels: tuple[int, ...]
    load_min_calls: int
    load_pause_s: float
    progress_runs: int
    long_generation_s: float
    registry_jobs: int
    registry_concurrent_jobs: int
    registry_concurrency: int
    replica_calls: int
    document_rounds: int
    batch_prompts: int


NOT_JUDGED = (
    "targets: not judged: --quick takes one or a few samples of each figure, too few to compare with a target; "
    "run `python -m bench` for the verdicts"
)
FULL = Size(
    cold_starts=15,
    calls=300,
    warmup=20,
    load_levels=(64, 256, 1000),
    load_min_calls=256,
    load_pause_s=load.KEEP_ALIVE_S + 1,
    progress_runs=9,
    long_generation_s=60,
    registry_jobs=1000,
    registry_concurrent_jobs=2000,
    registry_concurrency=64,
    replica_calls=1000,
    document_rounds=20,
    batch_prompts=50,
)
QUICK = Size(
    cold_starts=1,
    calls=10,
    warmup=2,
    load_levels=(1, 16),
    load_min_calls=2,
    load_pause_s=0,
    progress_runs=2,
    long_generation_s=2,
    registry_jobs=4,
    registry_concurrent_jobs=8,
    registry_concurrency=4,
    replica_calls=8,
    document_rounds=1,
    batch_prompts=3,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="every measurement at a tiny size (CI: it still works)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="run only these")
    parser.add_argument("--markdown", metavar="FILE", help="also append the run as Markdown to FILE")
    args = parser.parse_args(argv)
    command = shlex.join(["python", "-m", "bench", *(argv if argv is not None else sys.argv[1:])])
    size = QUICK if args.quick else FULL
    described = machine()
    print(f"$ {command}", *described, sep="\n", flush=True)
    started = time.monotonic()
    figures, notes = anyio.run(_run, set(args.only), size, not args.quick)
    print(f"\n{len(figures)} figures in {time.monotonic() - started:.0f} s")
    if args.quick:
        print(NOT_JUDGED)
    else:
        missed = [f.name for f in figures if f.met is False]
        print("targets missed: " + (", ".join(missed) if missed else "none"))
    if args.markdown:
        with open(args.markdown, "a") as out:
            out.write(markdown(figures, command, notes, described))
    return 0


async def _run(sections: set[str], size: Size, judge: bool = True) -> tuple[list[Figure], list[str]]:
    figures: list[Figure] = []
    memory: dict[str, float] = {}
    notes: list[str] = []

    def note(new: list[str]) -> None:
        for line in new:
            if line not in notes:  # the same from two sections once
                print(f"note: {line}", flush=True)
                notes.append(line)

    def show(new: list[Figure]) -> None:
        for figure in new:
            if not judge:
                figure.met = None  # a figure of one or two samples says nothing about a target
            print(figure.line(), flush=True)
        figures.extend(new)

    if "cold-start" in sections:
        new, memory, cold_notes = measure.cold_starts(size.cold_starts, with_others=judge)
        note(cold_notes)
        show(new)
    if "per-call" in sections:
        new, call_notes = await measure.per_call(size.calls, size.warmup, with_others=judge)
        note(call_notes)
        show(new)
    if "breakdown" in sections:
        show(await breakdown.breakdown(size.calls, size.warmup))
    if "streaming" in sections:
        show(await measure.first_progress(size.progress_runs))
    if "tasks" in sections:
        show(await anyio.to_thread.run_sync(tasks.long_generation, size.long_generation_s))
    if "context" in sections:
        with emulator() as emu:
            new, context_notes = await context.context_cost(emu.origin)
        show(new)
        notes += context_notes
    if "load" in sections:
        new, load_memory = await load.load(
            size.load_levels, size.load_min_calls, size.load_pause_s, measure.upstream_body
        )
        show(new)
        bare = memory.get("bare_rss_mib")
        if bare:
            server = shown([*GLM_MCP, "--transport", "http"])
            show(
                [
                    Figure(
                        "idle rss (http, before the load)",
                        load_memory["http_idle_mib"],
                        bare,
                        "MiB",
                        server,
                        shown(BARE_SERVER) + " (stdio, idle)",
                        detail="VmRSS from /proc",
                    ),
                    Figure(
                        "peak rss (http, during the load)",
                        load_memory["http_peak_mib"],
                        bare,
                        "MiB",
                        server,
                        shown(BARE_SERVER) + " (stdio, idle)",
                        detail="VmHWM from /proc after the load",
                    ),
                ]
            )
        notes.append(
            f"Load: the servers ran with GLM_MAX_CONCURRENCY={load.CONCURRENCY} (the default 32 would "
            f"queue the calls on purpose) and GLM_WAIT_SECONDS={load.WAIT_S}; MCP calls were raw JSON-RPC POSTs "
            f"from pools of {load.POOL} connections (fresh for each run, one session per pool when sessionful), "
            f"{size.load_pause_s:g} s apart (uvicorn's keep-alive is {load.KEEP_ALIVE_S:g} s)."
        )
    if "registry" in sections:
        new, registry_notes = await registry.registry(
            size.registry_jobs, size.registry_concurrent_jobs, size.registry_concurrency
        )
        show(new)
        notes += registry_notes
    if "replicas" in sections:
        new, replica_notes = await replicas.replicas(size.replica_calls, size.load_pause_s, measure.upstream_body)
        show(new)
        notes += replica_notes
    if "documents" in sections:
        new, document_notes = await documents.documents_cost(size.document_rounds)
        show(new)
        notes += document_notes
    if "batch" in sections:
        show(await batch.batch_price(size.batch_prompts))
    return figures, notes


if __name__ == "__main__":
    sys.exit(main())
