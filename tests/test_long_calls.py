"""Long calls stay alive and visible: streamed answers with progress, cancellation that reaches
the upstream, and a deadline that hands back a job.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any, cast

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver import Context

from glm_mcp.app import create_server
from glm_mcp.config import Settings
from glm_mcp.emulator import Emulator
from glm_mcp.glm import Credentials, GLMClient, open_http_client
from glm_mcp.glm.types import ChatRequest, Message, WebSearchOptions, WebSearchTool
from glm_mcp.server import progress
from glm_mcp.server.state import AppState
from tests.conftest import GENERAL_KEY, upstream_calls
from tests.processes import http_server, server_env
from tests.test_tools import failed, ok

pytestmark = pytest.mark.anyio

Progress = tuple[float, float | None, str | None]


class Recorder:
    """A progress callback that remembers what arrived and when."""

    def __init__(self) -> None:
        self.events: list[tuple[float, Progress]] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.events.append((anyio.current_time(), (progress, total, message)))

    @property
    def messages(self) -> list[str]:
        return [message or "" for _, (_, _, message) in self.events]


def _strip_cache(usage: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in usage.items() if k != "cached_tokens"}


async def _direct(emulator: Emulator, request: ChatRequest) -> Any:
    """The same request made straight to the emulator, not streamed."""
    async with open_http_client(emulator.base_url, timeout=10, connect_timeout=5) as http:
        return await GLMClient(http, Credentials(GENERAL_KEY)).chat(request)


async def test_streamed_tool_result_equals_the_plain_completion(client: Client, emulator: Emulator) -> None:
    arguments = {"prompt": "Explain recursion.", "model": "glm-4.6", "include_reasoning": True}
    out = ok(await client.call_tool("chat", arguments))
    assert upstream_calls(emulator, "/chat/completions")[-1].body["stream"] is True
    plain = await _direct(
        emulator, ChatRequest(model="glm-4.6", messages=[Message(role="user", content="Explain recursion.")])
    )
    assert out["text"] == plain.message.content
    assert out["reasoning"] == plain.message.reasoning_content
    assert plain.finish_reason == "stop" and "finish_reason" not in out  # stop says nothing: left out
    usage = plain.usage
    assert usage is not None
    assert _strip_cache(out["usage"]) == {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
    }
    assert out["reasoning_tokens"] == usage.reasoning_tokens

    search = ok(await client.call_tool("web_search_chat", {"question": "Tallest buildings", "count": 4}))
    request = ChatRequest(
        model="glm-4.6",
        messages=[Message(role="user", content="Tallest buildings")],
        tools=[WebSearchTool(web_search=WebSearchOptions(enable=True, search_result=True, count=4))],
    )
    plain = await _direct(emulator, request)
    assert search["text"] == plain.message.content
    assert [s["url"] for s in search["sources"]] == [item.link for item in plain.web_search or []]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_progress_arrives_while_the_answer_streams(settings: Settings, emulator: Emulator, mode: str) -> None:
    emulator.config.chunk_delay = 0.05
    recorder = Recorder()
    async with Client(create_server(settings), mode=mode) as client:
        out = ok(await client.call_tool("chat", {"prompt": "Write a paragraph."}, progress_callback=recorder))
    assert len(recorder.events) >= 3, recorder.messages
    values = [value for _, (value, _, _) in recorder.events]
    assert values == sorted(values) and len(set(values)) == len(values)  # strictly increasing
    assert all(total == settings.results.wait_seconds for _, (_, total, _) in recorder.events)
    times = [t for t, _ in recorder.events]
    assert min(b - a for a, b in itertools.pairwise(times)) >= progress.MIN_INTERVAL_S * 0.8
    assert any(m.startswith("reasoning:") for m in recorder.messages)
    answering = [m for m in recorder.messages if m.startswith("answering:")]
    assert answering and answering[-1].split("…")[-1].strip() in " ".join(out["text"].split())


async def test_progress_over_http_in_both_modes(emulator: Emulator) -> None:
    emulator.config.chunk_delay = 0.04
    env = server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url)
    with http_server(env=env) as origin:
        for mode in ("auto", "legacy"):
            recorder = Recorder()
            async with Client(origin + "/mcp", mode=mode) as client:
                ok(await client.call_tool("chat", {"prompt": "Over HTTP"}, progress_callback=recorder))
            assert len(recorder.events) >= 2, (mode, recorder.messages)


async def test_a_silent_upstream_still_gets_heartbeats(
    settings: Settings, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress, "HEARTBEAT_S", 0.2)
    emulator.config.latency = 0.9
    recorder = Recorder()
    async with Client(create_server(settings)) as client:
        ok(await client.call_tool("chat", {"prompt": "hello"}, progress_callback=recorder))
    waiting = [m for m in recorder.messages if m.startswith("waiting for the first token")]
    assert len(waiting) >= 3, recorder.messages


async def _wait_for(condition: Any, timeout: float = 5.0) -> float:
    """Seconds until `condition()` held; fails after `timeout`."""
    start = anyio.current_time()
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.005)
    return anyio.current_time() - start


async def _cancel_mid_stream(client: Client, emulator: Emulator, prompt: str = "Cancel me") -> float:
    """Start a chat, cancel it once its stream is open; seconds until the emulator saw the disconnect."""
    before = emulator.state.disconnects
    async with anyio.create_task_group() as tg:
        tg.start_soon(client.call_tool, "chat", {"prompt": prompt})
        await _wait_for(lambda: emulator.state.open_streams == 1)
        await anyio.sleep(0.05)  # a few chunks in
        tg.cancel_scope.cancel()
    return await _wait_for(lambda: emulator.state.disconnects == before + 1)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_cancelling_a_call_closes_its_upstream_stream(settings: Settings, emulator: Emulator, mode: str) -> None:
    emulator.config.chunk_delay = 0.1
    async with Client(create_server(settings), mode=mode) as client:
        seconds = await _cancel_mid_stream(client, emulator)
        assert seconds < 0.5
        assert emulator.state.open_streams == 0
        ok(await client.call_tool("chat", {"prompt": "still fine after"}))


async def test_cancellation_over_stdio_reaches_the_upstream(emulator: Emulator) -> None:
    from mcp import StdioServerParameters

    from tests.processes import COMMAND

    emulator.config.chunk_delay = 0.1
    params = StdioServerParameters(
        command=COMMAND[0], args=COMMAND[1:], env=server_env(GLM_API_KEY=GENERAL_KEY, GLM_BASE_URL=emulator.base_url)
    )
    async with Client(params, mode="legacy") as client:
        assert await _cancel_mid_stream(client, emulator) < 0.5
    assert emulator.state.open_streams == 0


@pytest.mark.slow  # out of `--fast` (tests/tiers.py): fifty calls started and cancelled, ~10 s
async def test_fifty_cancelled_calls_leave_nothing_behind(settings: Settings, emulator: Emulator) -> None:
    emulator.config.chunk_delay = 0.05
    server = create_server(settings)
    states: list[AppState] = []

    @server.tool(name="debug_state")
    async def debug_state(ctx: Context) -> str:
        states.append(cast(AppState, ctx.request_context.lifespan_context))
        return "ok"

    async with Client(server) as client:
        await client.call_tool("debug_state", {})
        ok(await client.call_tool("chat", {"prompt": "warm up"}))
        tasks_before = len(asyncio.all_tasks())
        for i in range(50):
            await _cancel_mid_stream(client, emulator, prompt=f"cancelled call {i}")
        await anyio.sleep(0.1)
        assert emulator.state.disconnects == 50 and emulator.state.open_streams == 0
        assert len(states[0].jobs) == 0
        assert len(asyncio.all_tasks()) <= tasks_before
        pool = states[0].glm._http._transport._pool  # type: ignore[attr-defined]
        assert all(connection.is_idle() for connection in pool.connections)
        ok(await client.call_tool("chat", {"prompt": "and still answering"}))


async def test_past_the_deadline_a_job_id_comes_back_and_get_result_finishes_it(
    client: Client, emulator: Emulator
) -> None:
    emulator.config.chunk_delay = 0.05
    prompt = "A long essay on rivers."
    early = await client.call_tool("chat", {"prompt": prompt, "wait_seconds": 0.6})
    out = ok(early)
    assert out["status"] == "running" and out["job_id"].startswith("job_")
    assert "usage" not in out and "finish_reason" not in out
    assert "get_result" in early.content[0].text and out["job_id"] in early.content[0].text  # type: ignore[union-attr]

    recorder = Recorder()
    done = ok(
        await client.call_tool("get_result", {"task_id": out["job_id"], "wait_seconds": 20}, progress_callback=recorder)
    )
    assert done["status"] == "completed" and done["kind"] == "chat"
    assert recorder.events, "get_result long-polls with progress"

    emulator.config.chunk_delay = 0.0
    whole = ok(await client.call_tool("chat", {"prompt": prompt}))
    assert done["result"]["text"] == whole["text"]
    assert whole["text"].startswith(out["text"])
    assert _strip_cache(done["result"]["usage"]) == _strip_cache(whole["usage"])

    again = ok(await client.call_tool("get_result", {"task_id": out["job_id"], "wait_seconds": 0}))
    assert again["result"]["text"] == whole["text"]
    assert len(upstream_calls(emulator, "/chat/completions")) == 2  # the job ran once


@pytest.mark.parametrize("tool", ["chat", "web_search_chat"])
async def test_a_job_handed_off_before_its_first_chunk_names_its_model(
    client: Client, emulator: Emulator, tool: str
) -> None:
    emulator.config.latency = 1.0
    question = {"chat": "prompt", "web_search_chat": "question"}[tool]
    early = ok(await client.call_tool(tool, {question: "Anyone there?", "model": "glm-4.5-air", "wait_seconds": 0.2}))
    assert early["status"] == "running" and early.get("text", "") == ""
    assert early["model"] == "glm-4.5-air"


async def test_a_web_search_job_keeps_its_sources(client: Client, emulator: Emulator) -> None:
    emulator.config.chunk_delay = 0.05
    early = ok(await client.call_tool("web_search_chat", {"question": "Deep sea fish", "wait_seconds": 0.2}))
    assert early["status"] == "running" and "sources" not in early
    done = ok(await client.call_tool("get_result", {"task_id": early["job_id"], "wait_seconds": 20}))
    assert done["kind"] == "web_search_chat" and done["result"]["sources"]
    links = [item["link"] for item in upstream_calls(emulator, "/chat/completions")[-1].response["web_search"]]
    assert [s["url"] for s in done["result"]["sources"]] == links


async def test_get_result_while_running_gives_the_partial_text(client: Client, emulator: Emulator) -> None:
    emulator.config.chunk_delay = 0.1
    # Thinking off: the answer text starts with the first chunk, so some is there at any wait.
    early = ok(await client.call_tool("chat", {"prompt": "Slow one", "thinking": "disabled", "wait_seconds": 0.5}))
    status = ok(await client.call_tool("get_result", {"task_id": early["job_id"], "wait_seconds": 0.3}))
    assert status["status"] == "running" and "result" not in status
    assert status["partial_text"] and status["partial_text"].startswith(early.get("text", ""))


async def test_an_unknown_job_id_is_a_clear_error(client: Client) -> None:
    out = failed(await client.call_tool("get_result", {"task_id": "job_0123456789abcdef"}))
    assert out["error"] == "unknown_job"


async def test_a_network_error_mid_answer_keeps_the_partial_text(client: Client, emulator: Emulator) -> None:
    out = failed(await client.call_tool("chat", {"prompt": "Fail halfway [emulator:fail]"}))
    response = upstream_calls(emulator, "/chat/completions")[-1].response
    assert response["choices"][0]["finish_reason"] == "network_error"
    assert out["error"] == "answer_cut" and out["retryable"] is True
    assert out["partial_text"] == response["choices"][0]["message"]["content"]


async def test_a_failed_job_reports_fail_with_its_reason(client: Client, emulator: Emulator) -> None:
    emulator.config.chunk_delay = 0.05
    early = ok(await client.call_tool("chat", {"prompt": "Slow failure [emulator:fail]", "wait_seconds": 0.2}))
    done = ok(await client.call_tool("get_result", {"task_id": early["job_id"], "wait_seconds": 20}))
    assert done["status"] == "failed" and done["error"]["error"] == "answer_cut"
    assert done["partial_text"]


# --- a stream is a job only once handed off ------------------------------------------------------------------


def _debug_server(settings: Settings, states: list[AppState]) -> Any:
    """The real server with one more tool that hands the test its process state."""
    server = create_server(settings)

    @server.tool(name="debug_state")
    async def debug_state(ctx: Context) -> str:
        states.append(cast(AppState, ctx.request_context.lifespan_context))
        return "ok"

    return server


async def test_a_call_answered_within_its_wait_never_makes_a_job(settings: Settings, emulator: Emulator) -> None:
    """While it streams, and after it answered: no job in the runner, none in list_jobs."""
    emulator.config.chunk_delay = 0.02
    states: list[AppState] = []
    jobs_seen: list[int] = []
    async with Client(_debug_server(settings, states)) as client:
        await client.call_tool("debug_state", {})
        state = states[0]

        async def watch() -> None:
            await _wait_for(lambda: emulator.state.open_streams == 1)
            while emulator.state.open_streams:
                jobs_seen.append(len(state.jobs))
                await anyio.sleep(0.01)

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            out = ok(await client.call_tool("chat", {"prompt": "Answered in time.", "wait_seconds": 60}))
        assert out["text"] and "job_id" not in out
        assert jobs_seen and set(jobs_seen) == {0}, jobs_seen  # not even while it streamed
        assert len(state.jobs) == 0
        assert "jobs" not in ok(await client.call_tool("list_jobs", {}))


async def test_a_chunk_arriving_at_the_hand_off_is_neither_lost_nor_doubled(client: Client, emulator: Emulator) -> None:
    """Waits swept across chunk arrivals: whichever side of the hand-off a chunk lands on, each job's answer is the
    emulator's, once; the hand-off's text and the answer saved with the job are its beginning; the job's progress
    goes on from where the call's stopped; its usage is the whole answer's."""
    emulator.config.chunk_delay = 0.04
    prompt = "Chunks at the boundary."
    arguments = {"prompt": prompt, "thinking": "disabled"}
    waits = [0.1 + i * 0.01 for i in range(12)]  # three chunk intervals, in quarter steps
    early: dict[float, dict[str, Any]] = {}

    async def hand_off(wait: float) -> None:
        early[wait] = ok(await client.call_tool("chat", {**arguments, "wait_seconds": wait}))

    async with anyio.create_task_group() as tg:
        for wait in waits:
            tg.start_soon(hand_off, wait)
    recorders = {wait: Recorder() for wait in waits}
    saved = {}
    for wait in waits:
        out = early[wait]
        assert out["status"] == "running", out
        saved[wait] = ok(await client.call_tool("get_result", {"task_id": out["job_id"], "wait_seconds": 0}))
    done = {}
    for wait in waits:
        job_id = early[wait]["job_id"]
        args = {"task_id": job_id, "wait_seconds": 30}
        done[wait] = ok(await client.call_tool("get_result", args, progress_callback=recorders[wait]))

    emulator.config.chunk_delay = 0.0
    whole = ok(await client.call_tool("chat", arguments))
    for wait in waits:
        result = done[wait]["result"]
        assert result["text"] == whole["text"], wait  # nothing lost, nothing twice
        assert _strip_cache(result["usage"]) == _strip_cache(whole["usage"]), wait
        assert whole["text"].startswith(early[wait].get("text", "")), wait
        partial = saved[wait].get("partial_text") or saved[wait].get("result", {}).get("text", "")
        assert partial.startswith(early[wait].get("text", "")) and whole["text"].startswith(partial), wait
        answering = [m for m in recorders[wait].messages if m.startswith("answering:")]
        if answering:  # the job's progress counts from the call's text on, never from nothing
            chars = int(answering[0].split(":")[1].split("chars")[0].replace(",", ""))
            assert chars >= len(early[wait].get("text", "")), (wait, answering[0])
    assert len(upstream_calls(emulator, "/chat/completions")) == len(waits) + 1  # each job's stream ran once
