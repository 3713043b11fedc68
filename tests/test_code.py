"""The code stays as the house asks. `ruff check`, `ruff format --check` and `mypy --strict` run beside pytest in
`scripts/test`, each a process of its own; what they cannot see is checked here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_no_file_keeps_merge_conflict_markers() -> None:
    """A merge resolved in haste once left `<<<<<<<` … `>>>>>>>` in docs/architecture.md."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    marked = []
    for name in tracked.splitlines():
        path = ROOT / name
        if (
            path.suffix not in {".py", ".md", ".toml", ".json", ".yaml", ".yml", ".txt", ".mjs", ""}
            or not path.is_file()
        ):
            continue
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        if any(line.startswith(("<<<<<<< ", ">>>>>>> ")) for line in lines):
            marked.append(name)
    assert not marked, f"merge conflict markers left in {marked}"


IMPORTS = re.compile(r"^\s*(?:from|import)\s+(\w+)", re.MULTILINE)
FORBIDDEN = {"bench": {"tests"}, "tests": {"bench"}, "rigs": {"tests", "bench"}, "glm_mcp": {"tests", "bench", "rigs"}}
"""What each package must not import: tests and benchmarks share only rigs/, and glm_mcp ships without any of them."""


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_tests_and_benchmarks_share_only_rigs(package: str) -> None:
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for name in IMPORTS.findall(path.read_text())
        if name in FORBIDDEN[package]
    ]
    assert not wrong, wrong


def test_starting_the_server_imports_nothing_only_some_calls_need() -> None:
    """jsonschema (tool definitions in a chat) and jwt with cryptography (OAuth sign-in) cost ~65 ms of every
    cold start when imported with the server; they are imported at their first use."""
    probe = "import sys, glm_mcp.app, glm_mcp.cli; print(sorted({'jsonschema', 'jwt'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
