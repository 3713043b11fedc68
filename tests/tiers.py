"""The two tiers of the suite: every test (`scripts/test`), and the in-process tests alone (`scripts/test --fast`).

A test is `slow` when it starts a process: a server over stdio or HTTP, PostgreSQL, a Node tool, Claude Code, an
install. No author has to remember a marker: before anything runs, the classifier reads the code a test runs, as
compiled. It follows every name the test and each of its fixtures use into every function and class of the
checkout's own code (any file under the rootdir outside a virtualenv: tests/, rigs/, bench/, glm_mcp/), and calls
the test slow when that code reaches one of the ways Python starts a process (the `subprocess` module,
`anyio.open_process`, the SDK's `StdioServerParameters`, `os.fork`, ...: STARTERS). A test slow for another reason
(seconds of CPU, a long real-time wait) says so itself with `@pytest.mark.slow`.

`--fast` runs the others only, and holds them to it: in that run, starting a process raises `ProcessStarted` (an
audit hook, `sys.addaudithook`, sees every way Python starts one), so a test the classifier misread fails at once,
naming what it started, instead of slowing the fast tier down unnoticed.

Every run puts the slow tests first, so with `pytest -n` (pytest-xdist) the long ones start while the short
in-process ones fill the workers' ends.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import multiprocessing
import os
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import mcp
import mcp.client.stdio
import pytest

__all__ = ["PROCESS_EVENTS", "STARTERS", "Classifier", "ProcessStarted"]

STARTING_MODULES = frozenset({subprocess, multiprocessing, asyncio.subprocess})
"""Modules whose use means a process: nothing in them is for anything else."""

STARTERS: frozenset[object] = frozenset(
    {
        anyio.open_process,
        anyio.run_process,
        asyncio.create_subprocess_exec,
        asyncio.create_subprocess_shell,
        mcp.StdioServerParameters,
        mcp.client.stdio.stdio_client,
        os.system,
        os.popen,
        os.fork,
        os.posix_spawn,
        os.posix_spawnp,
        os.execv,
        os.execve,
        os.execvp,
        os.execvpe,
    }
)
"""The callables outside those modules that start a process. Libraries are not followed: they start none but
through these (were one to, the guard of `--fast` would say so)."""

PROCESS_EVENTS = frozenset(
    {"subprocess.Popen", "os.system", "os.fork", "os.forkpty", "os.posix_spawn", "os.exec", "os.spawn", "pty.spawn"}
)
"""The audit events (https://docs.python.org/3/library/audit_events.html) of every way Python starts a process."""


class ProcessStarted(RuntimeError):
    """A test of the fast tier started a process."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast",
        action="store_true",
        help="run the in-process tests only (no test marked or found slow: no server process, no PostgreSQL, "
        "no Node tool, no install), and fail any of them that starts a process",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "slow: left out of `--fast`; set by tests/tiers.py on every test that starts a process, and by hand on a "
        "test slow for another reason",
    )


@pytest.hookimpl(trylast=True)  # after the other plugins' selection (-k, -m, --lf)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    classifier = Classifier(config.rootpath)
    for item in items:
        if item.get_closest_marker("slow") is None and classifier.starts_processes(item):
            item.add_marker(pytest.mark.slow)
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    fast = [item for item in items if item.get_closest_marker("slow") is None]
    if config.getoption("fast"):
        if slow:
            config.hook.pytest_deselected(items=slow)
        items[:] = fast
    else:
        items[:] = slow + fast


@pytest.fixture(scope="session", autouse=True)
def _fast_tier_starts_no_process(request: pytest.FixtureRequest) -> None:
    """Under `--fast`, in the process that runs the tests (an xdist worker, or pytest itself), from the first
    test on, nothing may start a process. An audit hook cannot be removed; the process ends with the run."""
    if request.config.getoption("fast"):
        sys.addaudithook(_refuse_processes)


def _refuse_processes(event: str, args: tuple[Any, ...]) -> None:
    if event in PROCESS_EVENTS:
        raise ProcessStarted(
            f"--fast runs in-process tests only, and this one started a process ({event}: {str(args)[:300]}), "
            "which tests/tiers.py did not see coming: mark the test `@pytest.mark.slow`"
        )


class Classifier:
    """Which tests start processes, reading the code of the checkout at `root`; each piece of code is read once."""

    def __init__(self, root: Path) -> None:
        self._root = root.resolve()
        self._verdicts: dict[types.CodeType, bool] = {}
        self._own_modules: dict[str, bool] = {}

    def starts_processes(self, item: pytest.Item) -> bool:
        """Whether the test, or a fixture it uses, reaches code of the checkout's own that starts a process."""
        return any(self._code_starts_processes(code, scope) for code, scope in _entry_points(item))

    def _code_starts_processes(self, code: types.CodeType, scope: dict[str, Any]) -> bool:
        if code in self._verdicts:
            return self._verdicts[code]
        self._verdicts[code] = False  # a cycle (recursion) adds nothing
        found = self._names_start_processes(code, scope) or any(
            self._code_starts_processes(const, scope) for const in code.co_consts if isinstance(const, types.CodeType)
        )
        self._verdicts[code] = found
        return found

    def _names_start_processes(self, code: types.CodeType, scope: dict[str, Any]) -> bool:
        """`co_names` holds the globals, attributes and modules the code names: each is looked up where the code
        would find it (its globals, or an attribute of a module it names), and followed when it is our own."""
        names = code.co_names
        found = [scope[name] for name in names if name in scope]
        found += [module for name in names if (module := self._module(name)) is not None]  # imported in a body
        modules = [obj for obj in found if isinstance(obj, types.ModuleType)]
        while modules:  # `module.attribute`, to any depth (`rigs.postgres_server.postgres_server`)
            module = modules.pop()
            for name in names:
                attribute = getattr(module, name, None)
                if attribute is None and hasattr(module, "__path__"):  # `from package import submodule`
                    attribute = self._module(f"{module.__name__}.{name}")
                if attribute is None or any(attribute is known for known in found):
                    continue
                found.append(attribute)
                if isinstance(attribute, types.ModuleType):
                    modules.append(attribute)
        return any(
            _is_starter(obj)
            or (
                not isinstance(obj, types.ModuleType)
                and self._own(obj)
                and any(self._code_starts_processes(inner, inner_scope) for inner, inner_scope in _codes(obj))
            )
            for obj in found
        )

    def _module(self, name: str) -> types.ModuleType | None:
        """The module `name` if one is loaded by that name; one of our own is imported (a fixture may import its
        helper in its body, which has not run yet)."""
        if name in sys.modules:
            return sys.modules[name]
        try:
            top = importlib.util.find_spec(name.partition(".")[0])  # found, not imported
            if top is None or not self._own_file(top.origin):
                return None
            return importlib.import_module(name)
        except (ImportError, ValueError):
            return None

    def _own(self, obj: object) -> bool:
        module = getattr(obj, "__module__", None)
        return isinstance(module, str) and self._own_module(module)

    def _own_module(self, name: str) -> bool:
        """Whether module `name` is a file of the checkout (not of a virtualenv in it)."""
        if name not in self._own_modules:
            self._own_modules[name] = self._own_file(getattr(sys.modules.get(name), "__file__", None))
        return self._own_modules[name]

    def _own_file(self, file: str | None) -> bool:
        path = Path(file).resolve() if file else None
        return (
            path is not None
            and path.is_relative_to(self._root)
            and not {".venv", "site-packages", "dist-packages"} & set(path.parts)
        )


def _entry_points(item: pytest.Item) -> Iterator[tuple[types.CodeType, dict[str, Any]]]:
    """The test function (and the other methods of its class) and every fixture it uses, as compiled code."""
    function = getattr(item, "obj", None)
    if function is not None:
        yield from _codes(function)
    cls = getattr(item, "cls", None)
    if cls is not None:
        yield from _codes(cls)
    fixture_info = getattr(item, "_fixtureinfo", None)  # pytest's record of the fixtures a test uses
    for name in getattr(item, "fixturenames", ()):
        for definition in fixture_info.name2fixturedefs.get(name, ()) if fixture_info else ():
            yield from _codes(definition.func)


def _codes(obj: object) -> Iterator[tuple[types.CodeType, dict[str, Any]]]:
    """The code of a function (through decorators: contextmanager, hypothesis's given, bound methods), or of each
    method of a class, with the globals its names resolve in."""
    if isinstance(obj, type):
        for member in vars(obj).values():
            if isinstance(member, property):
                yield from (code for part in (member.fget, member.fset) if part for code in _codes(part))
            elif isinstance(member, staticmethod | classmethod) or inspect.isfunction(member):
                yield from _codes(member)
        return
    inner: object = getattr(getattr(obj, "hypothesis", None), "inner_test", None) or obj
    method_or_function: object = getattr(inner, "__func__", inner)
    function = inspect.unwrap(method_or_function) if callable(method_or_function) else None
    if inspect.isfunction(function):
        yield function.__code__, function.__globals__


def _is_starter(obj: object) -> bool:
    try:
        return obj in STARTING_MODULES or obj in STARTERS
    except TypeError:  # unhashable
        return False
