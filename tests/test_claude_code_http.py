"""Claude Code (headless, tests/claude_headless.py) signed in to our Streamable HTTP server: with the static token
(right, wrong, none) and as users of a real OpenID provider (the OAuth 2.1 resource server mode).

What Claude Code shows is read where a person or the model meets it: the `tool_result` its model gets (through
the scripted fake, tests/fake_anthropic.py) and the status `claude mcp get` prints. What it asked of our server
is read from our access log (`glm_mcp.access`, at INFO).

Claude Code 2.1.332 does, with a server that refuses it:
- `headers.Authorization` configured and refused (401): no OAuth at all; it tells the model and the user
  "Server rejected the configured Authorization header (HTTP 401) ... Error detail: <our 401 body>", the body
  cut to about 185 characters, quotes blanked. So our 401 says what is wrong and where the token comes from first.
- no Authorization header: a 401 starts its OAuth sign-in: protected-resource metadata (both paths), the
  authorization-server and OpenID metadata at our origin, then Dynamic Client Registration at /register, and
  it reports the step that failed. A 4xx at the metadata steps it passes over (a 5xx it reports as "HTTP 5xx
  trying to load OAuth metadata from <url>", without our words; getting any further would take an
  authorization server we are not), so with a static-token server the step reported is always the
  registration, "Dynamic Client Registration rejected (HTTP 400): <our answer>", quoted whole: our answer to
  /register is where the user reads that there is no OAuth here and which header to add. The model is told
  only that the server "did not connect".
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from glm_mcp.app import create_server
from glm_mcp.emulator import Emulator
from tests.claude_headless import SERVER, claude_mcp_get, claude_print
from tests.conftest import GENERAL_KEY, settings_for
from tests.fake_anthropic import Block, CallOneTool, FakeAnthropic
from tests.oidc import server_port, token
from tests.processes import drain, free_port, listening, scratch_dir, server_env

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="Claude Code is the linux-x64 build here")

TOKEN = "the-static-token-of-this-test-0123456789"
CALL_ID = CallOneTool.block_id
SEARCH_ID = CallOneTool.search_id
HANDED_OFF = {"prompt": "Tell me about rivers.", "wait_seconds": 1, "thinking": "disabled"}
ACCESS = re.compile(r'glm_mcp\.access: \S+ - "(\w+) (\S+) HTTP/[\d.]+" (\d{3})')


@dataclass
class Served:
    """A glm-mcp HTTP server run for one test; `requests` is its access log once it has stopped."""

    url: str
    requests: list[tuple[str, str, int]] = field(default_factory=list)


@contextmanager
def http_server(emulator: Emulator, port: int | None = None, **variables: str) -> Iterator[Served]:
    """`glm-mcp --transport http` on `emulator` with `variables`; its access log is read when it stops."""
    port = port or free_port()
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_LOG_LEVEL="INFO", **variables)
    with listening(["--transport", "http", "--port", str(port)], port, env=env) as (process, origin):
        output = drain(process)
        served = Served(origin + "/mcp")
        yield served
    log = output().decode(errors="replace")
    served.requests = [(m[1], m[2], int(m[3])) for m in ACCESS.finditer(log) if m[2] != "/healthz"]


def entry(url: str, bearer: str | None = None, authorization: str | None = None) -> dict[str, Any]:
    """Our server as an `mcpServers` entry of type http, with `Authorization: Bearer <bearer>` if given."""
    server: dict[str, Any] = {"type": "http", "url": url}
    if bearer is not None:
        authorization = f"Bearer {bearer}"
    if authorization is not None:
        server["headers"] = {"Authorization": authorization}
    return server


@dataclass
class Session:
    fake: FakeAnthropic

    def result(self, block_id: str = CALL_ID) -> Block:
        return self.fake.result_for(block_id)

    def read(self, block_id: str = CALL_ID) -> str:
        """The text the model read in the tool_result for `block_id`."""
        content = self.result(block_id)["content"]
        if isinstance(content, str):
            return content
        return "".join(block.get("text", "") for block in content if block.get("type") == "text")


def run_claude(claude: Path, tmp_path: Path, server: dict[str, Any], tool: str, arguments: dict[str, Any]) -> Session:
    """`claude -p` with `server`, its model scripted to call `tool` with `arguments` once."""
    home = tmp_path / f"home-{len(list(tmp_path.glob('home-*')))}"
    home.mkdir()
    with FakeAnthropic(CallOneTool(f"mcp__{SERVER}__{tool}", arguments)) as fake:
        claude_print(claude, home, fake, server, tool, home / "claude-debug.log")
    return Session(fake)


def issue(status: str) -> str:
    """The `Issue:` line of `claude mcp get`, whole."""
    (line,) = [line.strip() for line in status.splitlines() if line.strip().startswith("Issue:")]
    return line


# The static token (GLM_MCP_HTTP_TOKEN) --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_with_the_right_token_claude_code_hands_the_model_our_structured_content(
    claude: Path, emulator: Emulator, tmp_path: Path
) -> None:
    arguments = {"prompt": "Name three rivers in China."}
    with http_server(emulator, GLM_MCP_HTTP_TOKEN=TOKEN) as served:
        session = run_claude(claude, tmp_path, entry(served.url, TOKEN), "chat", arguments)
    emulator.state.clear()
    async with Client(create_server(settings_for(emulator, GLM_DATA_DIR=scratch_dir()))) as client:
        direct = await client.call_tool("chat", arguments)
    assert direct.structured_content is not None

    assert "is_error" not in session.result()
    given = json.loads(session.read())  # JSON: our structuredContent
    assert given.keys() == dict(direct.structured_content).keys()
    assert given["text"] == direct.structured_content["text"]
    assert served.requests and {status for _, _, status in served.requests} == {200}
    assert {path for _, path, _ in served.requests} == {"/mcp"}  # no OAuth probe: it had its token


def test_with_a_wrong_token_claude_code_tells_the_model_and_the_user_the_token_is_wrong(
    claude: Path, emulator: Emulator, tmp_path: Path
) -> None:
    with http_server(emulator, GLM_MCP_HTTP_TOKEN=TOKEN) as served:
        wrong = entry(served.url, "not-the-token")
        session = run_claude(claude, tmp_path, wrong, "chat", {"prompt": "Hello"})
        status = claude_mcp_get(claude, tmp_path / "home-get", wrong)

    # The model: ToolSearch finds nothing, and says why, quoting the start of our 401.
    told = session.read(SEARCH_ID)
    assert "rejected the configured Authorization header (HTTP 401)" in told, told
    detail = told.split("Error detail:", 1)[1]
    assert "Wrong token" in detail and "GLM_MCP_HTTP_TOKEN" in detail, detail
    assert session.result().get("is_error") is True  # its call then fails: no such tool
    # The user: the same, in `claude mcp get`.
    shown = issue(status)
    assert "Wrong token" in shown and "GLM_MCP_HTTP_TOKEN" in shown, shown
    assert "Dynamic Client Registration" not in told + shown
    assert {(path, code) for _, path, code in served.requests} == {("/mcp", 401)}  # it tried nothing else


def test_with_a_token_not_sent_as_bearer_claude_code_tells_how_to_send_it(
    claude: Path, emulator: Emulator, tmp_path: Path
) -> None:
    """The token pasted as the header's whole value, without "Bearer ": the commonest slip."""
    with http_server(emulator, GLM_MCP_HTTP_TOKEN=TOKEN) as served:
        shown = issue(claude_mcp_get(claude, tmp_path / "home-get", entry(served.url, authorization=TOKEN)))
    assert "(HTTP 401)" in shown and "not a bearer token" in shown.split("Error detail:", 1)[1], shown


def test_with_no_token_claude_code_shows_the_user_there_is_no_oauth_and_which_header_to_add(
    claude: Path, emulator: Emulator, tmp_path: Path
) -> None:
    with http_server(emulator, GLM_MCP_HTTP_TOKEN=TOKEN) as served:
        shown = issue(claude_mcp_get(claude, tmp_path / "home-get", entry(served.url)))
        session = run_claude(claude, tmp_path, entry(served.url), "chat", {"prompt": "Hello"})

    asked = [(method, path) for method, path, _ in served.requests]
    assert asked[0] == ("POST", "/mcp")  # refused: 401 …
    assert ("GET", "/.well-known/oauth-protected-resource/mcp") in asked  # … so it looks for OAuth …
    assert ("POST", "/register") in asked  # … and last tries to register as a client
    # What it shows is our answer to that last step: no OAuth here, and the header that is missing.
    ours = json.loads(shown.split("): ", 1)[1])
    assert ours["error"] == "invalid_client_metadata"  # RFC 7591's refusal of a registration
    said = ours["error_description"]
    assert said.startswith("No OAuth sign-in here"), said
    assert "GLM_MCP_HTTP_TOKEN" in said and '--header "Authorization: Bearer <token>"' in said, said
    assert "did not connect" in session.read()  # all the model is told (Claude Code's words)


# Signed in through the identity provider (GLM_MCP_OAUTH_ISSUER) -------------------------------------------------


@pytest.fixture
def slow(emulator: Emulator) -> Iterator[Emulator]:
    """The emulator generating slowly: a chat outlives a short wait, so its job is handed off."""
    emulator.config.chunk_delay = 0.2
    yield emulator


def test_a_job_claude_code_starts_as_alice_is_invisible_to_claude_code_as_bob(
    claude: Path, slow: Emulator, provider: tuple[str, str], tmp_path: Path
) -> None:
    issuer, resource = provider
    alice, bob = token(issuer, "alice"), token(issuer, "bob")
    oauth = {"GLM_MCP_OAUTH_ISSUER": issuer, "GLM_MCP_OAUTH_AUDIENCE": resource}
    with http_server(slow, server_port(resource), **oauth) as served:
        started = json.loads(run_claude(claude, tmp_path, entry(served.url, alice), "chat", HANDED_OFF).read())
        assert started["status"] == "running", started
        job = started["job_id"]
        bob_get = run_claude(claude, tmp_path, entry(served.url, bob), "get_result", {"task_id": job})
        bob_list = json.loads(run_claude(claude, tmp_path, entry(served.url, bob), "list_jobs", {}).read())
        alice_list = json.loads(run_claude(claude, tmp_path, entry(served.url, alice), "list_jobs", {}).read())

    assert bob_get.result().get("is_error") is True
    assert bob_get.read().startswith(f"Error: {job} is unknown: no job of yours"), bob_get.read()  # unknown_job
    assert job not in json.dumps(bob_list), bob_list
    assert [j["job_id"] for j in alice_list["jobs"]] == [job], alice_list  # the job is there, for its owner
    assert {status for _, _, status in served.requests} == {200}
