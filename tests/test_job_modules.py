"""The modules of glm_mcp/jobs/ import each other in one direction only, and psycopg only for PostgreSQL."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JOBS = ROOT / "glm_mcp" / "jobs"
PACKAGE = "glm_mcp.jobs"


def imported_modules(path: Path) -> set[str]:
    """The modules of jobs/ that `path` imports anywhere: at the top, in a function, under TYPE_CHECKING."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module == PACKAGE:
            found |= {alias.name for alias in node.names if (JOBS / f"{alias.name}.py").exists()}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE + "."):
            found.add((node.module or "").split(".")[2])
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[2] for alias in node.names if alias.name.startswith(PACKAGE + ".")}
    return found - {path.stem}


def test_no_module_of_jobs_imports_one_that_imports_it_back() -> None:
    graph = {path.stem: imported_modules(path) for path in JOBS.glob("*.py") if path.stem != "__init__"}
    cycles: list[list[str]] = []

    def visit(module: str, trail: list[str]) -> None:
        if module in trail:
            cycles.append([*trail[trail.index(module) :], module])
            return
        for imported in sorted(graph.get(module, ())):
            visit(imported, [*trail, module])

    for module in sorted(graph):
        visit(module, [])
    assert not cycles, sorted({" -> ".join(cycle) for cycle in cycles})


def test_only_the_postgresql_store_imports_psycopg() -> None:
    """A server on SQLite (every desktop install) needs none of it: an optional extra, imported for a database URL."""
    modules = sorted(path.stem for path in JOBS.glob("*.py") if path.stem not in {"__init__", "postgres"})
    probe = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        f"    importlib.import_module('{PACKAGE}.' + name)\n"
        "import glm_mcp.app\n"
        "print('psycopg' in sys.modules)\n"
        f"import {PACKAGE}.postgres\n"
        "print('psycopg' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"]
