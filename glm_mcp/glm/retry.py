"""When and how long to wait before sending a request again.

Only what can succeed on a second try is retried: rate limits and overload (1302, 1303, 1305),
server faults (5xx, 408, the platform's 500/1200/1230/1234), connection failures and timeouts.
Billing, auth, quota and bad-request codes never are — the official SDKs retry 1113 ("insufficient
balance") three times because they look only at the HTTP status. One time budget bounds all
attempts of a call together.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from glm_mcp.glm.errors import GLMAPIError, GLMError, GLMTransportError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 3
    """Attempts after the first; 0 turns retries off."""
    budget: float = 60.0
    """Seconds all attempts of one call may take together, waits included."""
    base_delay: float = 0.5
    max_delay: float = 8.0

    def delay(self, attempt: int, error: GLMError) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based).

        Exponential backoff with "equal jitter" (half fixed, half random) so that a burst of calls
        refused together does not come back together; a `Retry-After` from the platform is a floor.
        """
        backoff = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        wait = backoff / 2 + random.uniform(0, backoff / 2)
        retry_after = error.retry_after if isinstance(error, GLMAPIError) else None
        return float(max(wait, retry_after or 0.0))


@dataclass(slots=True)
class Attempts:
    """How one call went: the number of requests sent, and when the first was."""

    count: int = 0
    started: float = field(default_factory=time.monotonic)

    def next_wait(self, policy: RetryPolicy, error: GLMError, *, resend_if_maybe_delivered: bool) -> float | None:
        """Seconds to wait before trying again after `error`, or None to give up."""
        error.attempts = self.count
        if not error.retryable or self.count > policy.max_retries:
            return None
        if isinstance(error, GLMTransportError) and error.maybe_delivered and not resend_if_maybe_delivered:
            return None
        wait = policy.delay(self.count, error)
        if time.monotonic() - self.started + wait > policy.budget:
            return None
        return wait
