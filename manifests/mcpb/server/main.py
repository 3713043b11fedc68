"""The MCP bundle's entry point: glm-mcp over stdio, from the code and dependencies inside the bundle.

`scripts/stage-mcpb` puts glm_mcp and every dependency under `lib/` beside this file, one set of
compiled wheels per machine and Python version the bundle serves (pydantic's core is compiled), and
records in `lib/built-for.json` which directories make up each set. This file picks the set of the
Python that runs it and puts it first on sys.path, .pth files included (pywin32 needs its own). A
Python the bundle does not serve gets one line saying which ones it does, instead of an ImportError.
It runs on whatever `python3` the host finds, so it keeps to what old Pythons can parse.
"""

from __future__ import annotations

import json
import platform
import site
import sys
import sysconfig
from pathlib import Path

LIB = Path(__file__).resolve().parent / "lib"
MACHINES = {"amd64": "x86_64", "x86_64": "x86_64", "x64": "x86_64", "arm64": "arm64", "aarch64": "arm64"}
"""platform.machine() as each system spells it (AMD64 on Windows, aarch64 on Linux) -> the name in built-for.json."""


def running_target() -> str:
    """This interpreter as built-for.json names a set: platform, machine, implementation and ABI."""
    machine = platform.machine().lower()
    implementation = "cp" if sys.implementation.name == "cpython" else sys.implementation.name
    free_threaded = "t" if sysconfig.get_config_var("Py_GIL_DISABLED") else ""
    version = f"{sys.version_info[0]}{sys.version_info[1]}"
    return f"{sys.platform}-{MACHINES.get(machine, machine)}-{implementation}{version}{free_threaded}"


def activate(directories: list[Path]) -> None:
    """Put `directories` first on sys.path as site-packages directories: their .pth files are honoured."""
    before = list(sys.path)
    for directory in directories:
        site.addsitedir(str(directory))
    added = [entry for entry in sys.path if entry not in before]
    sys.path[:] = added + before


def library() -> list[Path] | str:
    """The directories of this Python's set, or the line that says why there is none."""
    built = json.loads((LIB / "built-for.json").read_text(encoding="utf-8"))
    target = running_target()
    if target in built["targets"]:
        return [LIB / directory for directory in built["targets"][target]]
    return (
        f"glm-mcp bundle: serves {built['serves']}; it was started by Python {platform.python_version()} "
        f"({target}) at {sys.executable}. Install one of those Pythons so that the host finds it as python3 "
        "(python on Windows), or build a bundle for this one: scripts/build-mcpb --python X.Y in a checkout of glm-mcp."
    )


if __name__ == "__main__":
    found = library()
    if isinstance(found, str):
        print(found, file=sys.stderr)
        sys.exit(1)
    activate(found)
    from glm_mcp.cli import main

    sys.exit(main(["serve", "--transport", "stdio"]))
