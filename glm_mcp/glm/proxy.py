"""Which proxy the HTTP client will go through for a URL: httpx2's own answer, not a copy of its rules."""

from __future__ import annotations

from typing import NamedTuple

import httpx2


class ProxyRoute(NamedTuple):
    """The proxy requests to a URL go through, and the variable that names it."""

    proxy: str
    """The proxy's URL as httpx2 reads it (`http://` added to one given without a scheme); may hold a password."""
    variable: str
    """HTTPS_PROXY, HTTP_PROXY or ALL_PROXY (read in either case, lower case first)."""


def proxy_route(url: str) -> ProxyRoute | None:
    """The proxy an `httpx2.AsyncClient(trust_env=True)` goes through for `url`; None when it connects directly.

    httpx2 has no public way to ask this. Its client builds its mounts from the private
    `httpx2._utils.get_environment_proxies()` (the process environment's HTTP(S)_PROXY, ALL_PROXY and
    NO_PROXY, with curl's rules: hosts, suffixes, `*`, ports, IP ranges) and takes the first
    `URLPattern` in their own order that matches (`_transport_for_url`). This does the same with the
    same pieces, so `glm-mcp doctor` says what the server's client will do; tests/test_doctor.py checks
    it against a real client, so a change in httpx2 fails a test instead of drifting here.
    """
    from httpx2._utils import URLPattern, get_environment_proxies

    mounts = get_environment_proxies()
    target = httpx2.URL(url)
    for pattern in sorted(URLPattern(key) for key in mounts):
        if pattern.matches(target):
            proxy = mounts[pattern.pattern]
            if proxy is None:  # a NO_PROXY entry
                return None
            return ProxyRoute(proxy, f"{pattern.pattern.partition('://')[0].upper()}_PROXY")
    return None
