"""The MCP bundle's entry point: glm-mcp over stdio, from the code and dependencies inside the bundle.

`scripts/build-mcpb` puts glm_mcp and every dependency in `lib/` beside this file, and records in
`lib/built-for.json` the Python and platform they were installed for: pydantic's core is compiled,
so a bundle runs only on the kind of machine and the Python version it was built with. A mismatch
gets one line saying so instead of an ImportError.
"""

from __future__ import annotations

import json
import sys
import sysconfig
from pathlib import Path

LIB = Path(__file__).resolve().parent / "lib"


def _mismatch() -> str | None:
    built = json.loads((LIB / "built-for.json").read_text())
    here = {"python": f"{sys.version_info[0]}.{sys.version_info[1]}", "platform": sysconfig.get_platform()}
    if built == here:
        return None
    return (
        f"glm-mcp bundle: built for Python {built['python']} on {built['platform']}, started by Python "
        f"{here['python']} on {here['platform']} ({sys.executable}). Rebuild it with that Python: "
        "PYTHON=/path/to/that/python3 scripts/build-mcpb, in a checkout of glm-mcp."
    )


if __name__ == "__main__":
    problem = _mismatch()
    if problem:
        print(problem, file=sys.stderr)
        sys.exit(1)
    sys.path.insert(0, str(LIB))
    from glm_mcp.cli import main

    sys.exit(main(["serve", "--transport", "stdio"]))
