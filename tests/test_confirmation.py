"""Cost asked before it is spent (GLM_CONFIRM_ABOVE) on every protocol era, and a prompt counted before it is sent.

A video from cogvideox-3 is estimated at 0.2 USD by the built-in price table, so with GLM_CONFIRM_ABOVE=0.1 its
call asks first: answered yes it goes on (the emulator sees the request), answered no nothing is sent and nothing
asked again, and a client that cannot be asked is refused with the estimate and how to raise the threshold. Driven
in process, over stdio (the SDK's client speaking 2025-11-25 with `elicitation/create`, and 2026-07-28 with an
`InputRequiredResult` it answers by calling again), raw on the 2026-07-28 wire (the tasks extension included),
over HTTP with and without sessions, and by the TypeScript SDK's client.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.session import ClientRequestContext
from mcp.types import CallToolResult, ElicitRequestParams, ElicitResult, ErrorData
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from glm_mcp.app import create_server
from glm_mcp.emulator import Emulator
from glm_mcp.server.confirmation import QUESTION_KEY_PREFIX
from glm_mcp.server.tasks import EXTENSION
from glm_mcp.tools.estimates import per_call, per_token
from rigs.node_tools import TS_SDK, node_env, node_modules
from tests.conftest import GENERAL_KEY, settings_for, upstream_calls
from tests.processes import COMMAND, RawStdio, http_server, server_env

pytestmark = pytest.mark.anyio

ABOVE = "0.1"
VIDEO = {"prompt": "a lighthouse in a storm", "model": "cogvideox-3", "wait_seconds": 0}
"""0.2 USD by the built-in price table (cogvideox-3), above ABOVE."""
FREE_VIDEO = {**VIDEO, "model": "cogvideox-flash"}
"""Unpriced: never asked about."""
DEAR_CHAT = "glm-4.6=2000/0"
"""GLM_PRICES making glm-4.6's prompt tokens dear (0.002 USD each), so that a short prompt is above ABOVE."""
MODERN = MODERN_PROTOCOL_VERSIONS[-1]


class User:
    """An elicitation callback answering as a user would, remembering each question it was asked."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.questions: list[ElicitRequestParams] = []

    async def __call__(self, context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        self.questions.append(params)
        if self.answer == "yes":
            return ElicitResult(action="accept", content={"confirm": True})
        if self.answer == "unticked":
            return ElicitResult(action="accept", content={"confirm": False})
        return ElicitResult(action="decline")


def video_requests(emulator: Emulator) -> list[Any]:
    return upstream_calls(emulator, "/videos/generations")


def failure(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error, result
    assert result.structured_content is not None
    return dict(result.structured_content)


def stdio(emulator: Emulator, **variables: str) -> StdioServerParameters:
    chosen = {"GLM_MCP_TOOLSETS": "all", "GLM_CONFIRM_ABOVE": ABOVE, **variables}
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, **chosen)
    return StdioServerParameters(command=COMMAND[0], args=COMMAND[1:], env=env)


# --- in process: what is asked, and when nothing is ---------------------------------------------------------


@pytest.mark.parametrize("mode", ["legacy", MODERN])
async def test_a_confirmation_names_the_estimate_and_its_basis(emulator: Emulator, data_dir: Path, mode: str) -> None:
    settings = settings_for(emulator, GLM_DATA_DIR=str(data_dir), GLM_MCP_TOOLSETS="all", GLM_CONFIRM_ABOVE=ABOVE)
    user = User("yes")
    async with Client(create_server(settings), mode=mode, elicitation_callback=user) as client:
        result = await client.call_tool("generate_video", VIDEO)
        free = await client.call_tool("generate_video", FREE_VIDEO)
    assert not result.is_error and not free.is_error
    (question,) = user.questions  # the unpriced model was not asked about
    assert question.mode == "form" and "about 0.2 USD" in question.message
    assert "0.2 USD a call, the row cogvideox-3 of the built-in price table" in question.message
    assert "GLM_CONFIRM_ABOVE (0.1)" in question.message
    assert question.requested_schema["properties"]["confirm"]["type"] == "boolean"
    assert [call.body["model"] for call in video_requests(emulator)] == ["cogvideox-3", "cogvideox-flash"]


async def test_unticked_is_no(emulator: Emulator, data_dir: Path) -> None:
    settings = settings_for(emulator, GLM_DATA_DIR=str(data_dir), GLM_MCP_TOOLSETS="all", GLM_CONFIRM_ABOVE=ABOVE)
    async with Client(create_server(settings), mode="legacy", elicitation_callback=User("unticked")) as client:
        refused = failure(await client.call_tool("generate_video", VIDEO))
    assert refused["error"] == "spend_declined" and video_requests(emulator) == []


class Misbehaving:
    """A client that answers the question with a JSON-RPC error, or accepts it with content that is not the form's."""

    def __init__(self, answer: ElicitResult | ErrorData) -> None:
        self.answer = answer

    async def __call__(self, context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult | ErrorData:
        return self.answer


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (ErrorData(code=-32603, message="the dialog crashed"), "confirmation_unavailable"),
        (ElicitResult(action="accept", content={"confirm": "maybe"}), "spend_declined"),
        (ElicitResult(action="accept"), "spend_declined"),
    ],
    ids=["error", "not-the-form", "no-content"],
)
async def test_a_misbehaving_clients_answer_is_not_a_yes(
    emulator: Emulator, data_dir: Path, answer: ElicitResult | ErrorData, error: str
) -> None:
    settings = settings_for(emulator, GLM_DATA_DIR=str(data_dir), GLM_MCP_TOOLSETS="all", GLM_CONFIRM_ABOVE=ABOVE)
    async with Client(create_server(settings), mode="legacy", elicitation_callback=Misbehaving(answer)) as client:
        refused = failure(await client.call_tool("generate_video", VIDEO))
    assert refused["error"] == error and video_requests(emulator) == []


async def test_off_by_default_nothing_is_asked(emulator: Emulator, settings: Any) -> None:
    user = User("no")
    settings = settings.replace(server={"toolsets": "all"})
    async with Client(create_server(settings), mode="legacy", elicitation_callback=user) as client:
        result = await client.call_tool("generate_video", VIDEO)
        chat = await client.call_tool("chat", {"prompt": "A long prompt " * 500})
    assert not result.is_error and not chat.is_error and user.questions == []
    assert upstream_calls(emulator, "/tokenizer") == []  # nothing new on a chat's path


async def test_a_chat_asks_by_its_prompts_tokenizer_count(emulator: Emulator, data_dir: Path) -> None:
    """A chat is asked about by its prompt's tokens at its model's input price: counted by the platform's tokenizer,
    once (the question asked again counts nothing twice); one too cheap to matter asks the tokenizer nothing."""
    settings = settings_for(emulator, GLM_DATA_DIR=str(data_dir), GLM_CONFIRM_ABOVE="0.01", GLM_PRICES=DEAR_CHAT)
    user = User("yes")
    async with Client(create_server(settings), mode=MODERN, elicitation_callback=user) as client:
        result = await client.call_tool("chat", {"prompt": "Tell me about rivers."})
        cheap = await client.call_tool("chat", {"prompt": "Hi", "model": "glm-4-flash"})
    assert not result.is_error and not cheap.is_error
    (counted,) = upstream_calls(emulator, "/tokenizer")  # not again when the call came back with the answer
    tokens = counted.response["usage"]["prompt_tokens"]
    assert tokens == result.structured_content["usage"]["prompt_tokens"]
    (question,) = user.questions
    assert f"the platform tokenizer's count of the prompt, {tokens} tokens, at 2000 per million input tokens" in (
        question.message
    )
    assert "the row glm-4.6 of GLM_PRICES" in question.message and f"about {tokens * 0.002:.4g} (chat" in (
        question.message
    )


async def test_a_declined_chat_sends_nothing(emulator: Emulator, data_dir: Path) -> None:
    settings = settings_for(emulator, GLM_DATA_DIR=str(data_dir), GLM_CONFIRM_ABOVE="0.01", GLM_PRICES=DEAR_CHAT)
    user = User("no")
    async with Client(create_server(settings), mode="legacy", elicitation_callback=user) as client:
        chat = failure(await client.call_tool("chat", {"prompt": "Tell me about rivers."}))
        submit = failure(await client.call_tool("submit_async", {"prompt": "Tell me about rivers."}))
        jobs = await client.call_tool("list_jobs", {})
    assert chat["error"] == submit["error"] == "spend_declined" and len(user.questions) == 2
    assert upstream_calls(emulator, "/chat/completions") == upstream_calls(emulator, "/async/chat/completions") == []
    assert "jobs" not in (jobs.structured_content or {})


def test_what_a_room_states_per_call_and_per_token(emulator: Emulator) -> None:
    """The two ways a room states a spend (a batch tool: its prompts' tokens at the Batch API's half price)."""
    settings = settings_for(emulator, GLM_PRICES="cogvideox-3=0.3")
    videos = per_call(settings, "cogvideox-3", "three videos", calls=3)
    assert videos is not None and videos.amount == pytest.approx(0.9) and videos.currency == ""  # GLM_PRICES's own
    assert videos.basis == "3 calls at 0.3 a call, the row cogvideox-3 of GLM_PRICES"
    batch = per_token(settings, "glm-5", 2_000_000, "batch: 300 prompts", counted="at most 2,000,000 tokens", share=0.5)
    assert batch is not None and batch.amount == pytest.approx(1.0) and batch.currency == "USD"
    assert batch.basis.startswith("at most 2,000,000 tokens, at 0.5 USD per million input tokens (0.5 of 1) (the row")
    assert per_call(settings, "cogvideox-flash", "unpriced") is None
    assert per_call(settings, "glm-5", "a chat is no call") is None
    assert per_token(settings, "mystery-1", 9, "unpriced", counted="") is None


# --- the prompt counted before sending (estimate_tokens) ------------------------------------------------------


async def test_the_estimate_is_the_tokenizers_count_made_once_per_content(emulator: Emulator, client: Client) -> None:
    first = await client.call_tool("chat", {"prompt": "How do deltas form?", "estimate_tokens": True})
    again = await client.call_tool("chat", {"prompt": "How do deltas form?", "estimate_tokens": True})
    submitted = await client.call_tool("submit_async", {"prompt": "How do deltas form?", "estimate_tokens": True})
    other = await client.call_tool("chat", {"prompt": "How do rivers meander?", "estimate_tokens": True})
    plain = await client.call_tool("chat", {"prompt": "How do deltas form?"})
    counts = upstream_calls(emulator, "/tokenizer")
    assert len(counts) == 2  # the same content is counted once: the second chat and the submit hit the cache
    assert [c.body["messages"] for c in counts] == [
        [{"role": "user", "content": "How do deltas form?"}],
        [{"role": "user", "content": "How do rivers meander?"}],
    ]
    tokens = counts[0].response["usage"]["total_tokens"]
    estimate = first.structured_content["prompt_estimate"]
    assert estimate == {"prompt_tokens": tokens, "counted_by": "platform tokenizer"}
    assert tokens == first.structured_content["usage"]["prompt_tokens"]
    for cached in (again, submitted):
        assert cached.structured_content["prompt_estimate"] == {**estimate, "cached": True}
    assert f"Prompt before sending: {tokens} tokens by the platform tokenizer." in first.content[0].text  # type: ignore[union-attr]
    assert other.structured_content["prompt_estimate"]["prompt_tokens"] == counts[1].response["usage"]["total_tokens"]
    assert "prompt_estimate" not in plain.structured_content


async def test_an_estimate_the_tokenizer_refuses_is_glm_mcps_own(emulator: Emulator, client: Client) -> None:
    """The count is a side matter: when the tokenizer fails, the chat still answers, with glm-mcp's estimate and why."""
    emulator.inject("error:1211", path="/tokenizer")
    result = await client.call_tool("chat", {"prompt": "How do deltas form?", "estimate_tokens": True})
    assert not result.is_error
    estimate = result.structured_content["prompt_estimate"]
    assert estimate["counted_by"] == "glm-mcp estimate" and estimate["prompt_tokens"] > 0
    assert estimate["note"].startswith("the platform's tokenizer did not count it: ")
    again = await client.call_tool("chat", {"prompt": "How do deltas form?", "estimate_tokens": True})
    assert again.structured_content["prompt_estimate"]["counted_by"] == "platform tokenizer"
    assert len(upstream_calls(emulator, "/tokenizer")) == 2  # a failure is not kept


# --- over stdio: the SDK's client on both eras -------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_over_stdio_yes_goes_on_no_sends_nothing_and_nobody_to_ask_is_refused(
    emulator: Emulator, mode: str
) -> None:
    params = stdio(emulator)
    yes, no = User("yes"), User("no")
    async with Client(params, mode=mode, elicitation_callback=yes) as client:
        assert (client.protocol_version in MODERN_PROTOCOL_VERSIONS) == (mode == "auto")
        accepted = await client.call_tool("generate_video", VIDEO)
    assert not accepted.is_error and len(yes.questions) == 1
    assert [call.body["model"] for call in video_requests(emulator)] == ["cogvideox-3"]

    emulator.state.clear()
    async with Client(params, mode=mode, elicitation_callback=no) as client:
        declined = failure(await client.call_tool("generate_video", VIDEO))
    assert declined["error"] == "spend_declined" and declined["retryable"] is False
    assert declined["estimated_cost"] == 0.2 and "Do not call again" in declined["hint"]
    assert len(no.questions) == 1 and emulator.state.exchanges == []  # asked once, nothing sent

    async with Client(params, mode=mode) as client:  # no elicitation callback: declares no elicitation
        refused = await client.call_tool("generate_video", VIDEO)
    assert failure(refused)["error"] == "confirmation_unavailable" and emulator.state.exchanges == []
    text = refused.content[0].text  # type: ignore[union-attr]
    assert "would spend about 0.2 USD (generate_video: one video with cogvideox-3)" in text
    assert "the client declared no form elicitation" in text
    assert "sets GLM_CONFIRM_ABOVE to 0.2 or more (or `off`)" in text
    assert failure(refused)["estimated_cost"] == 0.2


# --- raw on the 2026-07-28 wire: the request for input itself --------------------------------------------------


def _meta(*, tasks: bool = False, elicitation: bool = True) -> dict[str, Any]:
    capabilities: dict[str, Any] = {"elicitation": {"form": {}}} if elicitation else {}
    if tasks:
        capabilities["extensions"] = {EXTENSION: {}}
    return {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "raw-confirm-test", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    }


class ModernStdio:
    """Raw 2026-07-28 requests to a real stdio server, one at a time."""

    def __init__(self, raw: RawStdio) -> None:
        self._raw = raw
        self._ids = iter(range(1, 1_000_000))

    async def call(self, name: str, arguments: dict[str, Any], **params: Any) -> dict[str, Any]:
        meta = _meta(tasks=params.pop("tasks", False), elicitation=params.pop("elicitation", True))
        request_id = next(self._ids)
        body = {"name": name, "arguments": arguments, **params, "_meta": meta}
        await self._raw.send({"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": body})
        answer = await self._raw.answer(request_id, timeout=60)
        assert "result" in answer, answer
        return dict(answer["result"])


@asynccontextmanager
async def modern_stdio(emulator: Emulator, **variables: str) -> AsyncIterator[ModernStdio]:
    params = stdio(emulator, **variables)
    async with await anyio.open_process([params.command, *params.args], env=params.env) as process:
        yield ModernStdio(RawStdio(process))
        await process.aclose()


def accepted(key: str) -> dict[str, Any]:
    return {"inputResponses": {key: {"action": "accept", "content": {"confirm": True}}}}


async def test_the_2026_request_for_input_and_its_answer_on_the_wire(emulator: Emulator) -> None:
    """An `InputRequiredResult` with one form elicitation, keyed by its question; an answer to another question asks
    again; the call with the answer goes on, a declined one sends nothing; no elicitation declared: refused."""
    async with modern_stdio(emulator) as wire:
        asked = await wire.call("generate_video", VIDEO)
        assert asked["resultType"] == "input_required" and "requestState" not in asked
        ((key, request),) = asked["inputRequests"].items()
        assert key.startswith(QUESTION_KEY_PREFIX) and request["method"] == "elicitation/create"
        assert request["params"]["mode"] == "form" and "about 0.2 USD" in request["params"]["message"]
        assert request["params"]["requestedSchema"]["properties"]["confirm"]["type"] == "boolean"
        assert emulator.state.exchanges == []

        stale = await wire.call("generate_video", VIDEO, **accepted(QUESTION_KEY_PREFIX + "0" * 24))
        assert stale["resultType"] == "input_required" and list(stale["inputRequests"]) == [key]
        cheaper = await wire.call("generate_video", {**VIDEO, "model": "viduq1-text"}, **accepted(key))
        assert cheaper["resultType"] == "input_required"  # another estimate, another question: a yes is not reused
        assert list(cheaper["inputRequests"]) != [key] and emulator.state.exchanges == []

        declined = await wire.call("generate_video", VIDEO, inputResponses={key: {"action": "decline"}})
        assert declined["isError"] and declined["structuredContent"]["error"] == "spend_declined"
        assert emulator.state.exchanges == []

        unasked = await wire.call("generate_video", VIDEO, elicitation=False)
        assert unasked["isError"] and unasked["structuredContent"]["error"] == "confirmation_unavailable"

        done = await wire.call("generate_video", VIDEO, **accepted(key))
        assert done.get("resultType", "complete") == "complete" and not done["isError"]
        assert [call.body["model"] for call in video_requests(emulator)] == ["cogvideox-3"]


async def test_a_call_that_becomes_a_task_asks_before_the_task_exists(emulator: Emulator) -> None:
    """The tasks extension: the question is settled synchronously, before any job or task; the call with the answer
    is then answered with a task handle as usual."""
    emulator.config.chunk_delay = 0.12  # a glm-4.6 answer then outlasts the task threshold
    variables = {"GLM_PRICES": DEAR_CHAT, "GLM_CONFIRM_ABOVE": "0.01", "GLM_TASK_THRESHOLD_SECONDS": "0.5"}
    async with modern_stdio(emulator, **variables) as wire:
        prompt = {"prompt": "Write about rivers and their deltas."}
        asked = await wire.call("chat", prompt, tasks=True)
        assert asked["resultType"] == "input_required"
        assert upstream_calls(emulator, "/chat/completions") == []
        jobs = await wire.call("list_jobs", {})
        assert "jobs" not in jobs["structuredContent"]  # no job, so no task
        (key,) = asked["inputRequests"]
        task = await wire.call("chat", prompt, tasks=True, **accepted(key))
        assert task["resultType"] == "task" and task["status"] == "working"
        assert len(upstream_calls(emulator, "/tokenizer")) == 1


# --- over HTTP ----------------------------------------------------------------------------------------------------


async def test_over_sessionful_http_a_2025_client_is_asked(emulator: Emulator) -> None:
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_MCP_TOOLSETS="all")
    yes, no = User("yes"), User("no")
    with http_server("--sessionful", env={**env, "GLM_CONFIRM_ABOVE": ABOVE}) as origin:
        async with Client(origin + "/mcp", mode="legacy", elicitation_callback=yes) as client:
            accepted = await client.call_tool("generate_video", VIDEO)
        assert not accepted.is_error and len(yes.questions) == 1 and len(video_requests(emulator)) == 1
        async with Client(origin + "/mcp", mode="legacy", elicitation_callback=no) as client:
            declined = failure(await client.call_tool("generate_video", VIDEO))
    assert declined["error"] == "spend_declined" and len(no.questions) == 1 and len(video_requests(emulator)) == 1


async def test_over_stateless_http_a_2025_client_cannot_be_asked_and_a_2026_client_can(emulator: Emulator) -> None:
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url, GLM_MCP_TOOLSETS="all")
    old, modern = User("yes"), User("yes")
    with http_server("--stateless", env={**env, "GLM_CONFIRM_ABOVE": ABOVE}) as origin:
        async with Client(origin + "/mcp", mode="legacy", elicitation_callback=old) as client:
            refused = await client.call_tool("generate_video", VIDEO)
        assert failure(refused)["error"] == "confirmation_unavailable" and old.questions == []
        assert "run it with --sessionful" in refused.content[0].text  # type: ignore[union-attr]
        assert video_requests(emulator) == []
        async with Client(origin + "/mcp", mode="auto", elicitation_callback=modern) as client:
            assert client.protocol_version in MODERN_PROTOCOL_VERSIONS
            accepted = await client.call_tool("generate_video", VIDEO)
    assert not accepted.is_error and len(modern.questions) == 1 and len(video_requests(emulator)) == 1


# --- an outside client: the TypeScript SDK ---------------------------------------------------------------------

TS_ANSWERS = r"""
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StdioClientTransport } = require("@modelcontextprotocol/sdk/client/stdio.js");
const { ElicitRequestSchema } = require("@modelcontextprotocol/sdk/types.js");

(async () => {
  const client = new Client({ name: "glm-mcp-confirm-test", version: "0.0.0" }, { capabilities: { elicitation: {} } });
  const questions = [];
  client.setRequestHandler(ElicitRequestSchema, async (request) => {
    questions.push(request.params.message);
    return process.env.ANSWER === "yes" ? { action: "accept", content: { confirm: true } } : { action: "decline" };
  });
  const [command, ...args] = JSON.parse(process.env.SERVER_COMMAND);
  await client.connect(new StdioClientTransport({ command, args, env: JSON.parse(process.env.SERVER_ENV) }));
  const result = await client.callTool({ name: "generate_video", arguments: JSON.parse(process.env.ARGUMENTS) });
  console.log(JSON.stringify({ questions, result }));
  await client.close();
})().catch((error) => { console.error(error); process.exit(1); });
"""


async def _typescript_client_answering(emulator: Emulator, answer: str) -> dict[str, Any]:
    """What the TypeScript SDK's client, answering every question `answer` ("yes" or "no"), was asked and got."""
    params = stdio(emulator)
    env = node_env(
        {
            "NODE_PATH": str(node_modules(TS_SDK)),
            "SERVER_COMMAND": json.dumps([params.command, *params.args]),
            "SERVER_ENV": json.dumps(params.env),
            "ARGUMENTS": json.dumps(VIDEO),
            "ANSWER": answer,
        }
    )
    with anyio.fail_after(120):
        done = await anyio.run_process(["node", "-e", TS_ANSWERS], env=env, check=False)
    assert done.returncode == 0, done.stderr.decode()
    said: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return said


async def test_the_typescript_sdks_client_answers_yes(emulator: Emulator) -> None:
    said = await _typescript_client_answering(emulator, "yes")
    (question,) = said["questions"]
    assert "about 0.2 USD (generate_video: one video with cogvideox-3)" in question
    assert said["result"]["isError"] is False and said["result"]["structuredContent"]["status"] == "running"
    assert [call.body["model"] for call in video_requests(emulator)] == ["cogvideox-3"]


async def test_the_typescript_sdks_client_answers_no_and_nothing_is_sent(emulator: Emulator) -> None:
    said = await _typescript_client_answering(emulator, "no")
    assert len(said["questions"]) == 1
    assert said["result"]["isError"] is True and said["result"]["structuredContent"]["error"] == "spend_declined"
    assert video_requests(emulator) == []
