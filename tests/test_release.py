"""The version is set in one place: glm_mcp/__init__.py, which the package's metadata reads (hatch) and the
manifests copy (scripts/sync-manifests). The release workflows are checked against GitHub's workflow schema by
`scripts/test` (check-jsonschema), beside pytest."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

from glm_mcp import __version__

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION_MAY_APPEAR = {
    "glm_mcp/__init__.py": "where it is set",
    "manifests/server.json": "copied by scripts/sync-manifests, checked by test_manifests",
    "manifests/mcpb/manifest.json": "likewise",
    "docs/troubleshooting.md": "the doctor's sample header",
    "CHANGELOG.md": "the release notes",
    "BENCHMARKS.md": "the package versions a recorded run used",
}


def test_the_version_is_set_in_one_place() -> None:
    assert "version" in PYPROJECT["project"]["dynamic"] and "version" not in PYPROJECT["project"]
    assert PYPROJECT["tool"]["hatch"]["version"]["path"] == "glm_mcp/__init__.py"
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    found = {
        name
        for name in files
        if (ROOT / name).is_file()
        and re.search(rf"(?<![\d.]){re.escape(__version__)}(?![\d.])", (ROOT / name).read_text(errors="ignore"))
    }
    assert found - set(VERSION_MAY_APPEAR) == set(), "the version written where nothing keeps it in step"
    assert "glm_mcp/__init__.py" in found
