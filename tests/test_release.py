"""The first release is one tag away: one version, a changelog, and workflows that test, build, check and publish."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import yaml

from glm_mcp import __version__

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SUPPORTED = [c.rsplit(" :: ", 1)[1] for c in PYPROJECT["project"]["classifiers"] if re.search(r"Python :: 3\.\d+$", c)]
VERSION_MAY_APPEAR = {
    "glm_mcp/__init__.py": "where it is set",
    "manifests/server.json": "copied by scripts/sync-manifests, checked by test_manifests",
    "manifests/mcpb/manifest.json": "likewise",
    "README.md": "the doctor's sample header, checked by test_readme",
    "CHANGELOG.md": "the release notes",
    "BENCHMARKS.md": "the package versions a recorded run used",
}


def workflow(name: str) -> dict[Any, Any]:
    loaded = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(loaded, dict)
    loaded["on"] = loaded.pop(True, loaded.get("on"))  # YAML 1.1 reads the key `on` as true
    return loaded


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job["steps"])


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


def test_the_changelog_keeps_an_unreleased_section() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert changelog.startswith("# Changelog\n") and "Keep a Changelog" in changelog
    headings = re.findall(r"^## (.+)$", changelog, re.M)
    assert headings and headings[0] == "[Unreleased]"
    unreleased = changelog.split("## [Unreleased]", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"^### (Added|Changed|Fixed|Removed|Deprecated|Security)$", unreleased, re.M)
    for tool in ("chat", "web_search_chat", "submit_async", "get_result", "list_jobs"):
        assert f"`{tool}`" in unreleased


def test_ci_runs_the_test_command_on_every_supported_python() -> None:
    ci = workflow("ci.yml")
    assert {"push", "pull_request", "workflow_call"} <= set(ci["on"])
    (job,) = ci["jobs"].values()
    assert job["strategy"]["matrix"]["python"] == SUPPORTED == ["3.11", "3.12", "3.13"]
    runs = [step.get("run", "") for step in steps(job)]
    assert any(run.startswith("scripts/test") for run in runs), "CI must run the README's test command"
    setup = next(step for step in steps(job) if str(step.get("uses", "")).startswith("actions/setup-python"))
    assert setup["with"]["python-version"] == "${{ matrix.python }}"


def test_a_version_tag_tests_then_builds_checks_and_publishes_by_trusted_publishing() -> None:
    release = workflow("release.yml")
    assert release["on"] == {"push": {"tags": ["v*"]}}
    jobs = release["jobs"]
    assert jobs["test"]["uses"] == "./.github/workflows/ci.yml"
    assert jobs["build"]["needs"] == "test" and jobs["publish"]["needs"] == "build"
    build = "\n".join(step.get("run", "") for step in steps(jobs["build"]))
    assert "python -m build" in build
    assert "twine check" in build
    assert "$GITHUB_REF_NAME" in build and "glm_mcp/__init__.py" in build, "the tag must be the version"
    publish = jobs["publish"]
    assert publish["permissions"] == {"id-token": "write"}, "trusted publishing needs the OIDC token, nothing more"
    (upload,) = [step for step in steps(publish) if str(step.get("uses", "")).startswith("pypa/gh-action-pypi-publish")]
    assert "password" not in upload.get("with", {}), "trusted publishing: no API token"
    assert publish["environment"]["name"] == "pypi"


def test_the_sdist_carries_what_its_tests_need() -> None:
    included = PYPROJECT["tool"]["hatch"]["build"]["targets"]["sdist"]["include"]
    assert {"glm_mcp", "tests", "scripts", "bench", "rigs", "manifests", "CHANGELOG.md"} <= set(included)


def test_the_wheel_ships_glm_mcp_and_nothing_the_tests_or_benchmarks_run() -> None:
    assert PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["glm_mcp"]
    staging = (ROOT / "scripts" / "stage-mcpb").read_text()
    copied = re.findall(r'copytree\(ROOT / "(\w+)"', staging)
    assert copied == ["glm_mcp"], copied  # the MCPB bundle copies glm_mcp from the checkout, not rigs/ or tests/
