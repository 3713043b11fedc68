"""The icon clients show beside the server: the project's own mark, an SVG sent inline.

A `data:` URI needs no fetch from anywhere (clients are told to be wary of remote icons, and a
server used offline has nothing to fetch from); the mark is drawn here, not borrowed. It is sent
once, in `initialize`'s `serverInfo`: the same icon on every tool said nothing more and cost each
`tools/list` its ~480 bytes a tool.
"""

from __future__ import annotations

import base64

from mcp.types import Icon

__all__ = ["ICONS", "MARK_SVG"]

MARK_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">'
    '<rect width="64" height="64" rx="14" fill="#2648d8"/>'
    '<path d="M44 20A17 17 0 1 0 49 32H35" fill="none" stroke="#fff" stroke-width="7" stroke-linecap="round"/>'
    '<circle cx="44" cy="20" r="4.5" fill="#8fe3ff"/>'
    "</svg>"
)
"""A white G on blue, ending in a spark: GLM's initial, drawn for this project."""

ICONS = [
    Icon(
        src="data:image/svg+xml;base64," + base64.b64encode(MARK_SVG.encode()).decode(),
        mime_type="image/svg+xml",
        sizes=["any"],
    )
]
