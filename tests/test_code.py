"""The code stays as the house asks. `ruff check`, `ruff format --check` and `mypy --strict` run beside pytest in
`scripts/test`, each a process of its own; what they cannot see is checked here."""

from __future__ import annotations

import json
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


NOT_AT_START = {
    "jsonschema": "tool definitions in a chat",
    "jwt": "OAuth sign-in, with cryptography",
    "pydantic_settings": "no longer used: settings are a plain model read by `config.Variables`",
    "argparse": "a command line with arguments",
    "glm_mcp.server.auth": "a caller's own key, over HTTP",
    "glm_mcp.server.oauth": "a signed-in caller, over HTTP",
    "glm_mcp.glm.models": "a call's model limits, prices and estimates, a batch's usage, or GLM_PRICES",
}
"""What a stdio server imports only when something needs it, and what needs it."""

START = """
import json, os, sys
from glm_mcp.cli import main
status = main([])
print(json.dumps([status, sorted(set(os.environ["NOT_AT_START"].split()) & set(sys.modules))]), file=sys.stderr)
"""


def test_starting_the_server_imports_nothing_only_some_calls_need(tmp_path: Path) -> None:
    """jsonschema and jwt with cryptography cost ~65 ms of every cold start when imported with the server, and
    pydantic-settings, argparse and the HTTP caller's checks ~20 ms more; a stdio server started as clients start
    it (no arguments, stdin a pipe or a file) until its input ends imports none of them."""
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "GLM_API_KEY": "key.secret",
        "GLM_DATA_DIR": str(tmp_path),
        "NOT_AT_START": " ".join(NOT_AT_START),
    }
    result = subprocess.run(
        [sys.executable, "-c", START],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    status, imported = json.loads(result.stderr.splitlines()[-1])
    assert status == 0, result.stderr
    assert not imported, {name: f"imported at start, needed only for {NOT_AT_START[name]}" for name in imported}
