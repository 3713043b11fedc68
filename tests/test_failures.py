"""Failures handled like a production client: retries within a budget, precise errors, faults mid-stream.

Every fault is produced by the emulator on purpose (`emulator.inject`), on a real socket.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest
from mcp import Client

from glm_mcp.app import create_server
from glm_mcp.emulator import Emulator
from tests.conftest import settings_for, upstream_calls
from tests.test_tools import failed, ok

pytestmark = pytest.mark.anyio

CHAT = "/chat/completions"
SUBMIT = "/async/chat/completions"


async def call(emulator: Emulator, tool: str, arguments: dict[str, Any], **env: str) -> Any:
    async with Client(create_server(settings_for(emulator, **env))) as client:
        return await client.call_tool(tool, arguments)


async def test_rate_limited_twice_then_answered_reports_three_attempts(emulator: Emulator) -> None:
    emulator.inject("error:1302", "error:1302", path=CHAT)
    result = await call(emulator, "chat", {"prompt": "hello"})
    out = ok(result)
    assert out["attempts"] == 3 and out["text"]
    assert [e.status for e in upstream_calls(emulator, CHAT)] == [429, 429, 200]
    assert "3 attempts" in result.content[0].text


@pytest.mark.parametrize(
    "code",
    [
        "1000",
        "1001",
        "1002",
        "1003",
        "1004",
        "1113",
        "1121",
        "1210",
        "1211",
        "1212",
        "1213",
        "1214",
        "1215",
        "1220",
        "1261",
        "1301",
        "1304",
        "1308",
        "1310",
    ],
)
async def test_errors_no_retry_can_fix_are_sent_once(emulator: Emulator, code: str) -> None:
    emulator.inject(f"error:{code}", path=CHAT)
    out = failed(await call(emulator, "chat", {"prompt": "hello"}))
    assert out["glm_code"] == code and out["retryable"] is False and out["attempts"] == 1
    assert out["hint"]
    assert len(upstream_calls(emulator, CHAT)) == 1


async def test_insufficient_balance_is_sent_exactly_once_even_if_told_to_retry(emulator: Emulator) -> None:
    emulator.inject("error:1113;should-retry=true", path=CHAT)
    out = failed(await call(emulator, "chat", {"prompt": "hello"}))
    assert out["glm_code"] == "1113" and out["http_status"] == 429
    assert "Top up" in out["hint"] and "GLM_BASE_URL" in out["hint"]
    assert len(upstream_calls(emulator, CHAT)) == 1


@pytest.mark.parametrize(
    "fault", ["error:1303", "error:1305", "error:1234", "http:500", "http:503", "http:408", "drop"]
)
async def test_transient_failures_are_retried(emulator: Emulator, fault: str) -> None:
    emulator.inject(fault, path=CHAT)
    out = ok(await call(emulator, "chat", {"prompt": "hello"}))
    assert out["attempts"] == 2
    assert len(upstream_calls(emulator, CHAT)) == 2


async def test_x_should_retry_false_is_honoured(emulator: Emulator) -> None:
    emulator.inject("error:1302;should-retry=false", path=CHAT)
    out = failed(await call(emulator, "chat", {"prompt": "hello"}))
    assert out["retryable"] is False and out["attempts"] == 1


async def test_retry_after_is_honoured(emulator: Emulator) -> None:
    emulator.inject("error:1302;retry-after=1", path=CHAT)
    start = time.monotonic()
    out = ok(await call(emulator, "chat", {"prompt": "hello"}))
    assert out["attempts"] == 2 and time.monotonic() - start >= 1.0


async def test_one_budget_bounds_all_attempts(emulator: Emulator) -> None:
    emulator.inject(*["error:1302;retry-after=0.4"] * 10, path=CHAT)
    start = time.monotonic()
    out = failed(await call(emulator, "chat", {"prompt": "hello"}, GLM_RETRY_BUDGET="1", GLM_MAX_RETRIES="9"))
    assert time.monotonic() - start < 2.0
    assert out["glm_code"] == "1302" and out["retryable"] is True
    assert 2 <= out["attempts"] <= 3 and out["attempts"] == len(upstream_calls(emulator, CHAT))


async def test_retries_can_be_turned_off(emulator: Emulator) -> None:
    emulator.inject("error:1305", path=CHAT)
    out = failed(await call(emulator, "chat", {"prompt": "hello"}, GLM_MAX_RETRIES="0"))
    assert out["attempts"] == 1 and out["retryable"] is True


# --- submit_async must never create a second paid job -----------------------------------------


@pytest.mark.parametrize("fault", ["drop", "stall:3"])
async def test_a_submit_that_may_have_arrived_is_not_sent_again(emulator: Emulator, fault: str) -> None:
    emulator.inject(fault, path=SUBMIT)
    result = await call(emulator, "submit_async", {"prompt": "paid work"}, GLM_TIMEOUT="0.5")
    out = failed(result)
    assert out["error"] == "submit_uncertain" and out["retryable"] is False
    assert out["request_id"] and out["request_id"] in result.content[0].text
    # A stalled request is recorded when the emulator notices the client has gone: wait for it.
    with anyio.fail_after(5):
        while not upstream_calls(emulator, SUBMIT):
            await anyio.sleep(0.01)
    await anyio.sleep(0.2)  # time for a (wrong) second attempt to show up
    assert out["request_id"] == upstream_calls(emulator, SUBMIT)[0].body["request_id"]
    assert len(upstream_calls(emulator, SUBMIT)) == 1


async def test_a_refused_submit_is_retried(emulator: Emulator) -> None:
    emulator.inject("error:1302", path=SUBMIT)
    out = ok(await call(emulator, "submit_async", {"prompt": "paid work"}))
    assert out["attempts"] == 2 and out["status"] == "running"


async def test_a_malformed_answer_to_a_submit_may_be_a_paid_job_and_is_not_sent_again(emulator: Emulator) -> None:
    emulator.inject("malformed", path=SUBMIT)
    out = failed(await call(emulator, "submit_async", {"prompt": "x"}))
    assert out["error"] == "submit_uncertain" and "not the expected JSON" in out["message"]
    assert len(upstream_calls(emulator, SUBMIT)) == 1


async def test_a_malformed_answer_is_an_upstream_protocol_error_not_a_network_one(emulator: Emulator) -> None:
    emulator.inject("malformed", path=CHAT)
    out = failed(await call(emulator, "chat", {"prompt": "x"}, GLM_MAX_RETRIES="0"))
    assert out["error"] == "upstream_protocol_error" and out["retryable"] is True
    assert "GLM_BASE_URL" in out["hint"] and "network" not in out["hint"]


async def test_an_async_task_the_platform_stopped_has_failed_with_what_it_wrote(emulator: Emulator) -> None:
    """The finish-reason rule holds on every path: a completed task whose answer the filter cut has failed."""
    emulator.config.async_delay = 0.05
    emulator.inject("finish:sensitive", path=SUBMIT)
    async with Client(create_server(settings_for(emulator))) as client:
        task = ok(await client.call_tool("submit_async", {"prompt": "x"}))
        out = ok(await client.call_tool("get_result", {"task_id": task["task_id"], "wait_seconds": 5}))
    assert out["status"] == "failed" and out["error"]["error"] == "content_blocked"
    assert out["partial_text"] and out.get("result") is None


# --- faults inside a stream (the answer has begun: kept, not retried) --------------------------


async def test_an_error_frame_mid_stream_keeps_the_partial_text(emulator: Emulator) -> None:
    emulator.inject("stream-error:1234", path=CHAT)
    out = failed(await call(emulator, "chat", {"prompt": "hello"}))
    assert out["error"] == "upstream_error" and out["glm_code"] == "1234"
    assert out["partial_text"] and out["attempts"] == 1
    with anyio.fail_after(5):  # the emulator records a stream once it has ended on its side, which may be later
        while not upstream_calls(emulator, CHAT):
            await anyio.sleep(0.01)
    assert len(upstream_calls(emulator, CHAT)) == 1


async def test_a_cut_stream_keeps_the_partial_text(emulator: Emulator) -> None:
    emulator.inject("stream-cut:12", path=CHAT)
    out = failed(await call(emulator, "chat", {"prompt": "hello", "thinking": "disabled"}))
    assert out["error"] == "stream_broken" and out["partial_text"] and out["retryable"] is True


async def test_a_stream_missing_only_done_is_a_whole_answer(emulator: Emulator) -> None:
    emulator.inject("stream-no-done", path=CHAT)
    out = ok(await call(emulator, "chat", {"prompt": "hello"}))
    assert "finish_reason" not in out and out["usage"]["completion_tokens"] > 0  # stop: the answer simply ended


@pytest.mark.parametrize(("reason", "error"), [("network_error", "answer_cut"), ("sensitive", "content_blocked")])
async def test_unusable_finish_reasons_are_errors_with_partial_text(
    emulator: Emulator, reason: str, error: str
) -> None:
    emulator.inject(f"finish:{reason}", path=CHAT)
    out = failed(await call(emulator, "chat", {"prompt": "hello", "thinking": "disabled"}))
    assert out["error"] == error and out["partial_text"]


async def test_a_stall_past_the_read_timeout_is_retried(emulator: Emulator) -> None:
    emulator.inject("stall:5", path=CHAT)
    out = ok(await call(emulator, "chat", {"prompt": "hello"}, GLM_TIMEOUT="0.5"))
    assert out["attempts"] == 2


# --- a burst of calls against the platform's concurrency limit --------------------------------


async def _burst(emulator: Emulator, *, bound: int, calls: int = 200, limit: float = 90) -> list[Any]:
    """`calls` concurrent chats through a server bounded to `bound` in flight, against an emulator
    that allows 8 (it answers 1302 past that); every call must end within `limit` seconds."""
    emulator.config.max_in_flight = 8
    emulator.config.latency = 0.05
    results: list[Any] = []
    try:
        async with Client(create_server(settings_for(emulator, GLM_MAX_CONCURRENCY=str(bound)))) as client:

            async def one(i: int) -> None:
                results.append(await client.call_tool("chat", {"prompt": f"burst {i}"}))

            with anyio.fail_after(limit):
                async with anyio.create_task_group() as tg:
                    for i in range(calls):
                        tg.start_soon(one, i)
    finally:
        emulator.config.max_in_flight = None
    assert len(results) == calls
    return results


@pytest.mark.slow  # out of `--fast` (tests/tiers.py): waits out real backoffs, ~10 s
async def test_a_burst_queues_under_the_concurrency_bound(emulator: Emulator) -> None:
    results = await _burst(emulator, bound=8)
    assert not any(r.is_error for r in results)
    assert emulator.state.peak_in_flight <= 8
    assert all(e.status == 200 for e in upstream_calls(emulator, CHAT))


@pytest.mark.slow  # out of `--fast` (tests/tiers.py): waits out real backoffs, ~10 s
async def test_a_burst_over_the_platform_limit_ends_clearly(emulator: Emulator) -> None:
    """More in flight than the platform allows: 1302s are retried; every call ends, none hangs."""
    results = await _burst(emulator, bound=64)
    errors = [r.structured_content for r in results if r.is_error]
    assert all(e["glm_code"] == "1302" and e["retryable"] and e["attempts"] > 1 for e in errors), errors[:3]
    exchanges = upstream_calls(emulator, CHAT)
    # Every attempt a result reports is one request the platform saw, and each answered one is a success.
    assert sum(r.structured_content.get("attempts", 1) for r in results) == len(exchanges)
    assert len(results) - len(errors) == sum(e.status == 200 for e in exchanges) > 0
    assert any(e.status == 429 for e in exchanges)


async def test_an_oversized_prompt_is_refused_before_sending(emulator: Emulator) -> None:
    result = await call(emulator, "chat", {"prompt": "x" * 101}, GLM_MAX_PROMPT_CHARS="100")
    out = failed(result)
    assert out["error"] == "invalid_argument" and "100" in out["message"] and "GLM_MAX_PROMPT_CHARS" in out["message"]
    parts = [{"type": "text", "text": "y" * 60}, {"type": "image_url", "image_url": {"url": "z" * 60}}]
    out = failed(
        await call(emulator, "chat", {"messages": [{"role": "user", "content": parts}]}, GLM_MAX_PROMPT_CHARS="100")
    )
    assert out["field"] == "prompt"
    # The limit counts every message, not only the last one.
    history = [
        {"role": "user", "content": "a" * 60},
        {"role": "assistant", "content": "b" * 30},
        {"role": "user", "content": "c" * 20},
    ]
    out = failed(await call(emulator, "chat", {"messages": history}, GLM_MAX_PROMPT_CHARS="100"))
    assert out["field"] == "messages" and "110 characters" in out["message"]
    assert emulator.state.exchanges == []


@pytest.mark.parametrize("retries", [1, 2])
async def test_a_failure_that_keeps_coming_is_sent_max_retries_plus_one_times(emulator: Emulator, retries: int) -> None:
    emulator.inject(*["error:1305"] * (retries + 1), path=CHAT)  # one more attempt would succeed: it must not come
    out = failed(await call(emulator, "chat", {"prompt": "hello"}, GLM_MAX_RETRIES=str(retries)))
    assert out["glm_code"] == "1305" and out["retryable"] is True
    assert out["attempts"] == retries + 1 == len(upstream_calls(emulator, CHAT))
