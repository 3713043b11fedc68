"""The tiers (tests/tiers.py) on a suite of their own, run by a real pytest: `--fast` leaves out every test that
starts a process, however it gets there, and fails one that starts a process the classifier could not see."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SUITE = {
    "pytest.ini": "[pytest]\n",
    "helpers.py": """
        import subprocess


        def list_files():
            return subprocess.run(["ls"], capture_output=True, check=True).stdout
    """,
    "starting.py": """
        import anyio


        async def start_and_wait():
            async with await anyio.open_process(["true"]) as process:
                await process.wait()
    """,
    "conftest.py": """
        import pytest


        @pytest.fixture
        def server():
            from starting import start_and_wait  # imported when the fixture runs, as tests/conftest.py does

            return start_and_wait
    """,
    "test_sample.py": """
        import importlib
        import json

        import pytest

        import helpers


        def test_in_process():
            assert json.loads("[1]") == [1]


        def test_through_a_helper():
            assert helpers.list_files() is not None


        def test_through_a_fixture(server):
            assert server is not None


        class TestInAClass:
            def test_through_a_nested_function(self):
                def inner():
                    return helpers.list_files()

                assert inner() is not None


        @pytest.mark.slow
        def test_slow_by_hand():
            pass


        def test_hidden_from_the_classifier():
            importlib.import_module("sub" + "process").run(["true"], check=True)
    """,
}


def run_pytest(suite: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.tiers", "-p", "no:cacheprovider", "-v", *args],
        cwd=suite,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def outcomes(run: subprocess.CompletedProcess[str]) -> list[tuple[str, str]]:
    """(test name, outcome) in the order pytest ran them, from its -v lines."""
    lines = [line.split("::")[-1].split() for line in run.stdout.splitlines() if line.startswith("test_sample.py::")]
    return [(words[0], words[1]) for words in lines if len(words) > 1]


def test_fast_runs_only_what_starts_no_process_and_fails_what_it_could_not_see(tmp_path: Path) -> None:
    for name, text in SUITE.items():
        (tmp_path / name).write_text(textwrap.dedent(text).lstrip())

    fast = run_pytest(tmp_path, "--fast")
    assert outcomes(fast) == [("test_in_process", "PASSED"), ("test_hidden_from_the_classifier", "FAILED")], fast.stdout
    assert "4 deselected" in fast.stdout, fast.stdout
    assert "ProcessStarted: --fast runs in-process tests only" in fast.stdout, fast.stdout

    everything = run_pytest(tmp_path)
    assert outcomes(everything) == [  # the slow ones first
        ("test_through_a_helper", "PASSED"),
        ("test_through_a_fixture", "PASSED"),
        ("test_through_a_nested_function", "PASSED"),
        ("test_slow_by_hand", "PASSED"),
        ("test_in_process", "PASSED"),
        ("test_hidden_from_the_classifier", "PASSED"),
    ], everything.stdout
