"""A faithful local emulator of the Zhipu / Z.ai GLM HTTP API v4.

It answers like the real service (paths, auth, errors, streaming, async jobs, quirks) with
deterministic text, so integrations can be tried and tested offline. It shares no code with
the project's client on purpose: it checks the client instead of repeating its assumptions.
See docs/emulator.md.
"""

from .app import create_app
from .config import DEFAULT_MODELS, EmulatorConfig
from .generation import FAIL_MARKER, SENSITIVE_MARKER
from .runner import Emulator, serve
from .state import EmulatorState, Exchange

__all__ = [
    "DEFAULT_MODELS",
    "FAIL_MARKER",
    "SENSITIVE_MARKER",
    "Emulator",
    "EmulatorConfig",
    "EmulatorState",
    "Exchange",
    "create_app",
    "serve",
]
