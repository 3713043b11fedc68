"""Figures, each a value beside its floor from the same run, and how they are printed and written down."""

from __future__ import annotations

import os
import platform
import statistics
from dataclasses import dataclass
from importlib import metadata

PACKAGES = ("glm-mcp-server", "mcp", "httpx2", "httpcore2", "pydantic", "anyio", "starlette", "uvicorn")


@dataclass
class Figure:
    name: str
    value: float
    floor: float
    unit: str
    command: str
    floor_command: str
    target: str = ""
    met: bool | None = None
    detail: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.floor if self.floor else float("inf")

    @property
    def verdict(self) -> str:
        return "" if self.met is None else "met" if self.met else "MISSED"

    def line(self) -> str:
        verdict = f": {self.verdict}" if self.verdict else " (not judged)"
        target = f"  target {self.target}{verdict}" if self.target else ""
        detail = f"  [{self.detail}]" if self.detail else ""
        return (
            f"{self.name}: {_fmt(self.value)} {self.unit} vs floor {_fmt(self.floor)} {self.unit}"
            f" = {self.ratio:.2f}x{target}{detail}\n"
            f"    command: {self.command}\n    floor:   {self.floor_command}"
        )


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def percentile(values: list[float], q: float) -> float:
    """The `q` quantile (0..1) by nearest rank: with few samples p99 is the maximum, as it should be."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine() -> list[str]:
    """What the figures ran on: they mean little without it."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    versions = []
    for package in PACKAGES:
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} (not installed)")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"CPU: {cpu}, {os.cpu_count()} cores; load average at start {load}",
        f"Python {platform.python_version()} ({platform.python_implementation()}) on {platform.platform()}",
        "Packages: " + ", ".join(versions),
    ]


def markdown(figures: list[Figure], command: str, notes: list[str], described: list[str]) -> str:
    """The run as a Markdown section for BENCHMARKS.md."""
    rows = [
        "| figure | value | floor | ratio | target | |",
        "|---|---|---|---|---|---|",
    ]
    for f in figures:
        rows.append(
            f"| {f.name} | {_fmt(f.value)} {f.unit} | {_fmt(f.floor)} {f.unit} | {f.ratio:.2f}x "
            f"| {f.target} | {f.verdict} |"
        )
    details = [
        f"- **{f.name}**: `{f.command}` vs `{f.floor_command}`" + (f"; {f.detail}" if f.detail else "") for f in figures
    ]
    return "\n".join(
        [f"Command: `{command}`", "", *(f"- {m}" for m in described), "", *rows, "", *details, "", *notes, ""]
    )
