"""A real OpenID provider for the sign-in tests (npm `oidc-provider` on Node 22, tests/oidc_provider.mjs), the
access tokens its users alice, bob and brief get from it, and its key rotation."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2

from rigs.node_tools import OIDC_PROVIDER, node_env, node_modules
from tests.processes import free_port

SCRIPT = Path(__file__).with_name("oidc_provider.mjs")


@contextmanager
def oidc_provider() -> Iterator[tuple[str, str]]:
    """The provider's issuer, and the MCP endpoint URL its tokens are for (on a port chosen for the server)."""
    port, server_port = free_port(), free_port()
    resource = f"http://127.0.0.1:{server_port}/mcp"
    env = node_env({"OIDC_MODULES": str(node_modules(OIDC_PROVIDER))})
    process = subprocess.Popen(
        ["node", str(SCRIPT), str(port), resource],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.strip() == "listening":
                break
        yield f"http://127.0.0.1:{port}", resource
    finally:
        process.kill()
        process.wait()


def server_port(resource: str) -> int:
    """The port of the MCP endpoint URL `resource`: where the server must listen for the provider's tokens."""
    return int(resource.split(":")[-1].split("/")[0])


def token(issuer: str, user: str, *, scope: str = "glm-mcp", resource: str | None = None) -> str:
    """An access token for `user` (client-credentials grant), for the provider's resource unless told otherwise."""
    data = {"grant_type": "client_credentials", "client_id": user, "client_secret": f"{user}-secret", "scope": scope}
    if resource is not None:
        data["resource"] = resource
    answer = httpx2.post(issuer + "/token", data=data, timeout=10)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def rotate_keys(issuer: str) -> str:
    """Have the provider withdraw its signing key and sign with a new one from now on; the new key's kid."""
    answer = httpx2.post(issuer + "/test/rotate-keys", timeout=10)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["kid"])
