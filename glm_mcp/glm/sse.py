"""Server-sent events, parsed incrementally the way the official SDK reads GLM streams.

Rules (glm-api.md, "SDK parser"): lines starting with `:` are comments; `data:` loses one
leading space; several `data` lines of one event join with a newline; a blank line ends an
event. GLM sends no `event:` lines, so only the data matters.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

DONE = "[DONE]"


async def iter_sse_data(lines: AsyncIterable[str]) -> AsyncIterator[str]:
    """Yield the data of each event as soon as its terminating blank line arrives."""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:  # a stream cut after its last data line still delivers that event
        yield "\n".join(data)
