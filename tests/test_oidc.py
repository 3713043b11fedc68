"""Sign-in through a real OpenID provider (npm `oidc-provider` on Node 22, run locally): the HTTP server as an
OAuth 2.1 resource server. Two users see only their own jobs; expired, wrong-audience, unsigned and
under-scoped tokens are refused with the right status and `WWW-Authenticate`; a key the provider withdrew
is refused once its new key set is fetched; the static token works beside the provider, the scope being
the provider's tokens' alone; a static-token server answers OAuth probes by saying what is really wrong.
Hostile key endpoints and crafted tokens: tests/test_oidc_hostile.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx2
import jwt
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from glm_mcp.emulator import Emulator
from tests.conftest import GENERAL_KEY
from tests.oidc import oidc_provider, rotate_keys, server_port, token
from tests.processes import drain, free_port, listening, server_env
from tests.test_tools import failed, ok

pytestmark = pytest.mark.anyio
TOKEN = "static-token-for-the-probe-test"


@pytest.fixture(scope="module")
def server(provider: tuple[str, str]) -> Iterator[str]:
    issuer, resource = provider
    port = server_port(resource)
    with Emulator() as emulator:
        emulator.config.chunk_delay = 0.05
        env = server_env(
            GLM_API_KEY=GENERAL_KEY,
            GLM_BASE_URL=emulator.base_url,
            GLM_MCP_OAUTH_ISSUER=issuer,
            GLM_MCP_OAUTH_AUDIENCE=resource,
        )
        with listening(["--transport", "http", "--port", str(port)], port, env=env) as (_, origin):
            yield origin


async def call(origin: str, bearer: str, tool: str, arguments: dict[str, Any]) -> Any:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {bearer}"}, timeout=60) as http,
        Client(streamable_http_client(origin + "/mcp", http_client=http)) as client,
    ):
        return await client.call_tool(tool, arguments)


def test_the_protected_resource_metadata_names_the_provider(provider: tuple[str, str], server: str) -> None:
    issuer, resource = provider
    metadata = httpx2.get(server + "/.well-known/oauth-protected-resource/mcp").json()
    assert metadata["resource"] == resource
    assert [s.rstrip("/") for s in metadata["authorization_servers"]] == [issuer]
    assert metadata["scopes_supported"] == ["glm-mcp"]


async def test_two_signed_in_users_see_only_their_own_jobs(provider: tuple[str, str], server: str) -> None:
    issuer, _ = provider
    alice, bob = token(issuer, "alice"), token(issuer, "bob")
    hand_off = {"thinking": "disabled", "wait_seconds": 0.2}
    mine = ok(await call(server, alice, "chat", {"prompt": "Alice's essay on tea", **hand_off}))["job_id"]
    theirs = ok(await call(server, bob, "chat", {"prompt": "Bob's essay on coffee", **hand_off}))["job_id"]
    listed = {u: ok(await call(server, t, "list_jobs", {}))["jobs"] for u, t in (("alice", alice), ("bob", bob))}
    assert [j["job_id"] for j in listed["alice"]] == [mine]
    assert [j["job_id"] for j in listed["bob"]] == [theirs]
    assert failed(await call(server, alice, "get_result", {"task_id": theirs}))["error"] == "unknown_job"
    done = ok(await call(server, bob, "get_result", {"task_id": theirs, "wait_seconds": 60}))
    assert done["status"] == "completed"


def refused(server: str, bearer: str) -> httpx2.Response:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Authorization": f"Bearer {bearer}", "Accept": "application/json, text/event-stream"}
    return httpx2.post(server + "/mcp", json=body, headers=headers, timeout=10)


async def test_bad_tokens_are_refused_with_the_right_status_and_challenge(
    provider: tuple[str, str], server: str
) -> None:
    issuer, _ = provider
    brief = token(issuer, "brief")  # lives one second
    wrong_audience = token(issuer, "alice", resource="http://127.0.0.1:9/elsewhere")
    claims = jwt.decode(token(issuer, "alice"), options={"verify_signature": False})
    unsigned = jwt.encode(claims, "", algorithm="none")
    no_scope = token(issuer, "alice", scope="other")
    await anyio.sleep(4)  # past its expiry and the leeway
    for bad in (brief, wrong_audience, unsigned, "not-a-token"):
        answer = refused(server, bad)
        assert answer.status_code == 401, answer.text[:300]
        challenge = answer.headers["www-authenticate"]
        assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge
        assert "resource_metadata=" in challenge and "/.well-known/oauth-protected-resource/mcp" in challenge
    answer = refused(server, no_scope)
    assert answer.status_code == 403 and 'error="insufficient_scope"' in answer.headers["www-authenticate"]
    assert refused(server, token(issuer, "alice")).status_code == 200


def test_a_key_the_provider_withdrew_is_refused_once_it_rotated(emulator: Emulator) -> None:
    """The provider rotates: its key is gone from its JWKS and a new one signs. A token signed by the withdrawn
    key, still unexpired, is refused from the first fetch of the new key set on (here, the one a token signed
    by the new key brings about); the new key's tokens are accepted."""
    with oidc_provider() as (issuer, resource):
        env = server_env(
            GLM_API_KEY=GENERAL_KEY,
            GLM_BASE_URL=emulator.base_url,
            GLM_MCP_OAUTH_ISSUER=issuer,
            GLM_MCP_OAUTH_AUDIENCE=resource,
        )
        port = server_port(resource)
        with listening(["--transport", "http", "--port", str(port)], port, env=env) as (process, origin):
            output = drain(process)
            withdrawn = token(issuer, "alice")
            assert refused(origin, withdrawn).status_code == 200
            assert jwt.get_unverified_header(withdrawn)["kid"] != rotate_keys(issuer)
            signed_by_the_new_key = token(issuer, "alice")
            deadline = time.monotonic() + 90  # the first fetch may be too recent for another at once (cooldown)
            while (answer := refused(origin, signed_by_the_new_key)).status_code != 200:
                assert answer.status_code == 401 and time.monotonic() < deadline, answer.text[:300]
                time.sleep(0.5)
            answer = refused(origin, withdrawn)
            assert answer.status_code == 401, answer.text[:300]
            assert 'error="invalid_token"' in answer.headers["www-authenticate"]
            assert refused(origin, signed_by_the_new_key).status_code == 200
        assert b"Traceback" not in output()


def test_the_static_token_works_beside_the_provider_and_the_scope_is_the_providers_alone(
    provider: tuple[str, str], emulator: Emulator
) -> None:
    """With GLM_MCP_HTTP_TOKEN and GLM_MCP_OAUTH_ISSUER both set, the static token is let in (it has no scopes:
    the scope is the provider's vocabulary), and the provider's tokens must still grant GLM_MCP_OAUTH_SCOPE."""
    issuer, resource = provider
    port = free_port()  # the module's server holds the resource's port; the audience is only compared
    env = server_env(
        GLM_API_KEY=GENERAL_KEY,
        GLM_BASE_URL=emulator.base_url,
        GLM_MCP_HTTP_TOKEN=TOKEN,
        GLM_MCP_OAUTH_ISSUER=issuer,
        GLM_MCP_OAUTH_AUDIENCE=resource,
    )
    with listening(["--transport", "http", "--port", str(port)], port, env=env) as (_, origin):
        assert refused(origin, TOKEN).status_code == 200
        assert refused(origin, token(issuer, "alice")).status_code == 200
        answer = refused(origin, token(issuer, "alice", scope="other"))
        assert answer.status_code == 403 and 'error="insufficient_scope"' in answer.headers["www-authenticate"]
        assert refused(origin, TOKEN + "-not").status_code == 401


def test_an_empty_scope_setting_requires_no_scope(provider: tuple[str, str], emulator: Emulator) -> None:
    issuer, resource = provider
    port = free_port()
    env = server_env(
        GLM_API_KEY=GENERAL_KEY,
        GLM_BASE_URL=emulator.base_url,
        GLM_MCP_OAUTH_ISSUER=issuer,
        GLM_MCP_OAUTH_AUDIENCE=resource,
        GLM_MCP_OAUTH_SCOPE="",
    )
    with listening(["--transport", "http", "--port", str(port)], port, env=env) as (_, origin):
        assert refused(origin, token(issuer, "alice", scope="other")).status_code == 200
        assert "scopes_supported" not in httpx2.get(origin + "/.well-known/oauth-protected-resource/mcp").json()


def test_a_static_token_server_answers_oauth_probes_plainly(emulator: Emulator) -> None:
    port = free_port()
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_MCP_HTTP_TOKEN=TOKEN)
    with listening(["--transport", "http", "--port", str(port)], port, env=env) as (_, origin):
        unauthorised = httpx2.post(origin + "/mcp", json={}, timeout=10)
        assert unauthorised.status_code == 401
        assert unauthorised.json()["error_description"].startswith("No token was sent")
        assert "GLM_MCP_HTTP_TOKEN" in unauthorised.headers["www-authenticate"]
        for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-authorization-server"):
            probe = httpx2.get(origin + path, timeout=10)
            assert probe.status_code == 404 and "No OAuth sign-in here" in probe.json()["error_description"]
        registration = httpx2.post(origin + "/register", json={"redirect_uris": ["http://localhost/cb"]}, timeout=10)
        assert registration.status_code == 400 and registration.json()["error"] == "invalid_client_metadata"
        assert "Authorization: Bearer" in registration.json()["error_description"]
