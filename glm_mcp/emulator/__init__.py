"""A faithful local emulator of the Zhipu / Z.ai GLM HTTP API v4.

It answers like the real service (paths, auth, errors, streaming, async jobs, quirks) with
deterministic text, so integrations can be tried and tested offline. It shares no code with
the project's client on purpose: it checks the client instead of repeating its assumptions.
See docs/emulator.md.
"""

from .app import create_app
from .config import DEFAULT_MODELS, EmulatorConfig
from .errors import PLATFORM_ERRORS
from .faults import FAULT_HEADER, FaultError
from .generation import FAIL_MARKER, SENSITIVE_MARKER
from .runner import Emulator, serve
from .state import EmulatorState, Exchange, PendingFault

__all__ = [
    "DEFAULT_MODELS",
    "FAIL_MARKER",
    "FAULT_HEADER",
    "PLATFORM_ERRORS",
    "SENSITIVE_MARKER",
    "Emulator",
    "EmulatorConfig",
    "EmulatorState",
    "Exchange",
    "FaultError",
    "PendingFault",
    "create_app",
    "serve",
]
