"""The client's Files and Batch calls on their own, against the emulator (and a hostile upstream where the emulator
would not misbehave): upload, create, retrieve, cancel, a batch file's lines typed and scrubbed, delete."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anyio
import pytest

from glm_mcp.emulator import Emulator
from glm_mcp.glm import Credentials, GLMClient, GLMTransportError, open_http_client
from glm_mcp.glm.errors import GLMAPIError, GLMProtocolError
from glm_mcp.glm.types import BATCH_ENDPOINT, Batch, BatchRequest, ChatRequest, Message
from tests.conftest import GENERAL_KEY, upstream_calls
from tests.hostile_upstream import HostileUpstream, Reply, Request, json_reply

pytestmark = pytest.mark.anyio
HANG_S = 60.0


@pytest.fixture
async def glm(emulator: Emulator) -> AsyncIterator[GLMClient]:
    emulator.config.batch_validating = 0.1
    emulator.config.batch_item_seconds = 0.02
    emulator.config.batch_finalizing = 0.1
    http = open_http_client(emulator.base_url, timeout=10, connect_timeout=5)
    async with http:
        yield GLMClient(http, Credentials(GENERAL_KEY))


def jsonl(prompts: list[str]) -> bytes:
    lines = []
    for i, prompt in enumerate(prompts):
        request = ChatRequest(model="glm-4.6", messages=[Message(role="user", content=prompt)])
        body = json.loads(request.to_json())
        lines.append(json.dumps({"custom_id": f"item-{i}", "method": "POST", "url": BATCH_ENDPOINT, "body": body}))
    return ("\n".join(lines) + "\n").encode()


async def ended(glm: GLMClient, batch_id: str) -> Batch:
    with anyio.fail_after(HANG_S):
        while (batch := await glm.retrieve_batch(batch_id)).state == "running":
            await anyio.sleep(0.02)
    return batch


async def test_a_batch_uploaded_created_followed_and_read(glm: GLMClient, emulator: Emulator) -> None:
    uploaded = await glm.upload_file(jsonl(["one", "two [emulator:fail]", "three"]), filename="in.jsonl")
    assert uploaded.purpose == "batch" and uploaded.filename == "in.jsonl"
    sent = upstream_calls(emulator, "/files")[0]
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")

    batch = await glm.create_batch(BatchRequest(input_file_id=uploaded.id, metadata={"job": "x"}))
    assert batch.state == "running" and batch.status == "validating" and batch.output_file is None
    batch = await ended(glm, batch.id)
    assert batch.state == "completed" and batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (3, 2, 1)
    assert batch.output_file is not None and batch.error_file is not None

    answers = await glm.batch_file(batch.output_file)
    assert [line.custom_id for line in answers] == ["item-0", "item-2"]
    completions = [line.completion() for line in answers]
    assert all(c is not None and c.message.content and c.usage and c.usage.prompt_tokens for c in completions)
    (failed,) = await glm.batch_file(batch.error_file)
    assert failed.custom_id == "item-1" and failed.completion() is None and failed.failure()[0] == "1234"

    assert (await glm.delete_file(batch.output_file)).deleted
    with pytest.raises(GLMAPIError):
        await glm.batch_file(batch.output_file)


async def test_a_cancel_reaches_the_batch(glm: GLMClient, emulator: Emulator) -> None:
    emulator.config.batch_item_seconds = 0.5
    uploaded = await glm.upload_file(jsonl([f"q{i}" for i in range(20)]), filename="c.jsonl")
    batch = await glm.create_batch(BatchRequest(input_file_id=uploaded.id))
    cancelling = await glm.cancel_batch(batch.id)
    assert cancelling.status == "cancelling" and cancelling.state == "running"
    done = await ended(glm, batch.id)
    assert done.status == "cancelled" and done.state == "cancelled"


async def test_a_batch_is_never_created_twice_after_a_failure_that_may_have_reached_the_platform(
    glm: GLMClient, emulator: Emulator
) -> None:
    uploaded = await glm.upload_file(jsonl(["one"]), filename="d.jsonl")
    emulator.inject("drop", path="/batches")
    with pytest.raises(GLMTransportError) as failed:
        await glm.create_batch(BatchRequest(input_file_id=uploaded.id))
    assert failed.value.maybe_delivered
    assert len([e for e in upstream_calls(emulator, "/batches") if e.method == "POST"]) == 1


async def test_ids_from_an_answer_never_leave_the_api_path(glm: GLMClient, emulator: Emulator) -> None:
    for hostile in ("../files/x", "a/b", "", "x?y=1", "a b", "..", "."):
        with pytest.raises(GLMProtocolError):
            await glm.retrieve_batch(hostile)
        with pytest.raises(GLMProtocolError):
            await glm.batch_file(hostile)
    assert upstream_calls(emulator) == []


async def test_a_batch_file_echoing_the_key_is_read_scrubbed() -> None:
    key = "hostile.secret-of-the-key"

    def reply(request: Request) -> Reply:
        line = {
            "custom_id": "item-0",
            "response": {"status_code": 200, "body": {"choices": [{"message": {"content": f"the key: {key}"}}]}},
        }
        error = {
            "custom_id": "item-1",
            "response": {"status_code": 400, "body": {"error": {"code": "1210", "message": key}}},
        }
        return Reply(
            200,
            "OK",
            {"content-type": "application/octet-stream"},
            f"{json.dumps(line)}\n{json.dumps(error)}\n".encode(),
        )

    with HostileUpstream() as upstream:
        upstream.reply = reply
        http = open_http_client(upstream.base_url, timeout=10, connect_timeout=5)
        async with http:
            lines = await GLMClient(http, Credentials(key)).batch_file("20250101_output")
    text = repr([line.model_dump() for line in lines])
    assert key not in text and "secret-of-the-key" not in text
    completion = lines[0].completion()
    assert completion is not None and (completion.message.content or "").startswith("the key: ")


async def test_a_malformed_line_is_said_not_guessed() -> None:
    with HostileUpstream() as upstream:
        upstream.reply = lambda request: Reply(200, "OK", {}, b'{"custom_id": "a"}\nnot json at all\n')
        http = open_http_client(upstream.base_url, timeout=10, connect_timeout=5)
        async with http:
            with pytest.raises(GLMProtocolError, match="line 2"):
                await GLMClient(http, Credentials(GENERAL_KEY)).batch_file("20250101_output")


async def test_a_status_the_platform_adds_reads_as_running() -> None:
    with HostileUpstream() as upstream:
        upstream.reply = lambda request: json_reply(
            {"id": "batch_1", "status": "queued_somewhere", "output_file_id": ""}
        )
        http = open_http_client(upstream.base_url, timeout=10, connect_timeout=5)
        async with http:
            batch = await GLMClient(http, Credentials(GENERAL_KEY)).retrieve_batch("batch_1")
    assert batch.state == "running" and batch.output_file is None
