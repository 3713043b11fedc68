"""The control endpoint ``/_emulator/faults``: the fault queue over HTTP, for clients in other processes.

It needs no key, lives at the root only (not under the API prefixes) and is not recorded, so
arranging a failure never shows up as traffic of the client under test.
"""

from __future__ import annotations

import dataclasses
import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .errors import bad_request
from .faults import FaultError
from .state import EmulatorState

CONTROL_PATH = "/_emulator/faults"


def control_routes(state: EmulatorState) -> list[Route]:
    """``POST`` queues ``{"faults": [...], "path": ...}``, ``GET`` lists, ``DELETE`` empties; all answer the queue."""

    async def faults(request: Request) -> Response:
        if request.method == "POST":
            try:
                _inject(state, await request.body())
            except FaultError as error:
                return JSONResponse(bad_request(str(error)).body(None), status_code=400)
        elif request.method == "DELETE":
            state.clear_faults()
        return JSONResponse({"faults": [dataclasses.asdict(p) for p in state.pending_faults()]})

    return [Route(CONTROL_PATH, faults, methods=["GET", "POST", "DELETE"])]


def _inject(state: EmulatorState, raw: bytes) -> None:
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    faults = body.get("faults") if isinstance(body, dict) else None
    path = body.get("path") if isinstance(body, dict) else None
    if not isinstance(faults, list) or not all(isinstance(f, str) for f in faults):
        raise FaultError('the body must be {"faults": ["<fault>", ...], "path": "<route>" or null}')
    if path is not None and not isinstance(path, str):
        raise FaultError("path must be a string such as /chat/completions, or null")
    state.inject(faults, path)
