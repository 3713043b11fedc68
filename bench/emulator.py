"""The GLM emulator in a process of its own, so it never shares the load generator's event loop.

`python -m bench.emulator PORT LATENCY CHUNK_DELAY` (seconds).
"""

from __future__ import annotations

import sys

import anyio

from glm_mcp.emulator import EmulatorConfig, serve


def main(argv: list[str]) -> None:
    port, latency, chunk_delay = int(argv[0]), float(argv[1]), float(argv[2])
    anyio.run(serve, EmulatorConfig(latency=latency, chunk_delay=chunk_delay), "127.0.0.1", port)


if __name__ == "__main__":
    main(sys.argv[1:])
