"""The Files and Batch APIs of the emulator, judged by zai-sdk's own file and batch clients (strict validation: every
answer must validate against the SDK's types) and by plain HTTP where the SDK cannot say something.

A batch's statuses move with time, so the module's emulator runs its batches fast; every wait here is bounded only
to catch a hang, never timed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import pytest

from glm_mcp.emulator import FAIL_MARKER, SENSITIVE_MARKER, Emulator, EmulatorConfig
from tests.emulator.conftest import GENERAL_KEY

zai = pytest.importorskip("zai", reason="zai-sdk is in the test extras (pip install -e .[test])")
from zai.core import APIRequestFailedError  # noqa: E402
from zai.types.chat import Completion  # noqa: E402

OTHER_KEY = "other.key-other"
EMULATOR_CONFIG = EmulatorConfig(
    api_keys=(GENERAL_KEY, OTHER_KEY), batch_validating=0.3, batch_item_seconds=0.05, batch_finalizing=0.3
)
ENDPOINT = "/v4/chat/completions"
ENDED = ("completed", "failed", "expired", "cancelled")
HANG_S = 60.0


def line(custom_id: str, prompt: str, model: str = "glm-4.6", **extra: Any) -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], **extra}
    return {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body}


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(item) + "\n" for item in lines).encode()


@pytest.fixture
def sdk(emulator: Emulator) -> Iterator[Any]:
    client = zai.ZaiClient(
        api_key=GENERAL_KEY, base_url=emulator.base_url, max_retries=0, _strict_response_validation=True
    )
    yield client
    client.close()


def until_ended(sdk: Any, batch_id: str) -> tuple[Any, list[str]]:
    """The batch once it has ended, and every status seen on the way."""
    seen: list[str] = []
    deadline = time.monotonic() + HANG_S
    while time.monotonic() < deadline:
        batch = sdk.batches.retrieve(batch_id)
        if not seen or seen[-1] != batch.status:
            seen.append(batch.status)
        if batch.status in ENDED:
            return batch, seen
        time.sleep(0.02)
    raise AssertionError(f"batch {batch_id} never ended: {seen}")


def contents(sdk: Any, file_id: str) -> list[dict[str, Any]]:
    return [json.loads(text) for text in sdk.files.content(file_id).content.decode().splitlines()]


def test_a_batch_runs_to_completion_through_the_sdk(sdk: Any) -> None:
    prompts = [f"Classify issue {i}" for i in range(20)]
    prompts[5] += f" {FAIL_MARKER}"
    prompts[9] += f" {SENSITIVE_MARKER}"
    uploaded = sdk.files.create(
        file=("items.jsonl", jsonl([line(f"item-{i}", p) for i, p in enumerate(prompts)])), purpose="batch"
    )
    assert uploaded.purpose == "batch" and uploaded.bytes > 0 and uploaded.filename == "items.jsonl"

    created = sdk.batches.create(
        input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window="24h", metadata={"job": "test"}
    )
    assert created.status == "validating" and created.id.startswith("batch_")
    assert created.metadata == {"job": "test"} and created.input_file_id == uploaded.id
    assert not created.output_file_id and not created.error_file_id

    batch, seen = until_ended(sdk, created.id)
    assert seen[0] == "validating" and seen[-1] == "completed", seen
    assert "in_progress" in seen, seen
    assert batch.request_counts.total == 20
    assert (batch.request_counts.completed, batch.request_counts.failed) == (18, 2)
    assert batch.completed_at >= batch.finalizing_at >= batch.in_progress_at >= batch.created_at

    answers = contents(sdk, batch.output_file_id)
    errors = contents(sdk, batch.error_file_id)
    assert sorted(a["custom_id"] for a in answers + errors) == sorted(f"item-{i}" for i in range(20))
    for answer in answers:
        assert answer["id"] == batch.id and answer["response"]["status_code"] == 200
        completion = Completion.model_validate(answer["response"]["body"])  # the SDK's own chat type
        assert completion.choices[0].message.content and completion.usage.prompt_tokens > 0
    by_id = {e["custom_id"]: e["response"] for e in errors}
    assert by_id["item-5"]["status_code"] == 500 and by_id["item-5"]["body"]["error"]["code"] == "1234"
    assert by_id["item-9"]["status_code"] == 400 and by_id["item-9"]["body"]["error"]["code"] == "1301"

    # auto_delete_input_file defaults to true: the input is gone once the batch has ended
    with pytest.raises(APIRequestFailedError):
        sdk.files.content(uploaded.id)
    assert sdk.files.delete(batch.output_file_id).deleted
    with pytest.raises(APIRequestFailedError):
        sdk.files.content(batch.output_file_id)


def test_the_progress_grows_while_in_progress(sdk: Any, emulator: Emulator) -> None:
    emulator.config.batch_item_seconds = 0.2
    try:
        uploaded = sdk.files.create(
            file=("p.jsonl", jsonl([line(f"r{i}", f"q{i}") for i in range(10)])), purpose="batch"
        )
        created = sdk.batches.create(input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window="24h")
        counts: list[int] = []
        deadline = time.monotonic() + HANG_S
        while time.monotonic() < deadline:
            batch = sdk.batches.retrieve(created.id)
            if batch.status == "in_progress":
                counts.append(batch.request_counts.completed)
            if batch.status in ENDED:
                break
            time.sleep(0.05)
    finally:
        emulator.config.batch_item_seconds = EMULATOR_CONFIG.batch_item_seconds
    assert counts == sorted(counts) and len(set(counts)) > 1, counts
    assert all(c < 10 for c in counts)


def test_a_cancelled_batch_keeps_what_was_done(sdk: Any, emulator: Emulator) -> None:
    emulator.config.batch_item_seconds = 0.3
    try:
        uploaded = sdk.files.create(
            file=("c.jsonl", jsonl([line(f"r{i}", f"q{i}") for i in range(30)])), purpose="batch"
        )
        created = sdk.batches.create(input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window="24h")
        deadline = time.monotonic() + HANG_S
        while sdk.batches.retrieve(created.id).request_counts.completed < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        cancelling = sdk.batches.cancel(created.id)
    finally:
        emulator.config.batch_item_seconds = EMULATOR_CONFIG.batch_item_seconds
    assert cancelling.status == "cancelling" and cancelling.cancelling_at is not None
    batch, seen = until_ended(sdk, created.id)
    assert seen[-1] == "cancelled" and batch.cancelled_at is not None, seen
    done = batch.request_counts.completed
    assert 2 <= done < 30
    answers = contents(sdk, batch.output_file_id)
    assert len(answers) == done and {a["custom_id"] for a in answers} == {f"r{i}" for i in range(done)}
    with pytest.raises(APIRequestFailedError) as ended:
        sdk.batches.cancel(created.id)
    assert ended.value.status_code == 400


def test_a_file_the_platform_would_refuse_fails_the_batch_with_its_reasons(sdk: Any) -> None:
    lines = [line("a", "one"), line("a", "twice"), line("b", "other model", model="glm-4.5"), {"custom_id": "c"}]
    raw = jsonl(lines) + b"not json\n"
    uploaded = sdk.files.create(file=("bad.jsonl", raw), purpose="batch")
    created = sdk.batches.create(input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window="24h")
    batch, seen = until_ended(sdk, created.id)
    assert seen == ["validating", "failed"], seen
    assert batch.failed_at is not None and not batch.output_file_id
    problems = {(e.line, e.param) for e in batch.errors.data}
    assert problems == {(2, "custom_id"), (3, "body.model"), (4, "method"), (4, "url"), (4, "body"), (5, None)}


@pytest.mark.parametrize(
    ("request_body", "code"),
    [
        ({"endpoint": ENDPOINT}, "1213"),
        ({"input_file_id": "20250101_nope", "endpoint": ENDPOINT}, "1210"),
        ({"input_file_id": "{file}", "endpoint": "/v1/chat/completions"}, "1210"),
        ({"input_file_id": "{file}", "endpoint": ENDPOINT, "metadata": {f"k{i}": "v" for i in range(17)}}, "1210"),
        ({"input_file_id": "{file}", "endpoint": ENDPOINT, "metadata": {"k": "v" * 513}}, "1210"),
    ],
)
def test_a_batch_request_the_platform_would_refuse(
    sdk: Any, client: httpx2.Client, request_body: dict[str, Any], code: str
) -> None:
    uploaded = sdk.files.create(file=("ok.jsonl", jsonl([line("a", "one")])), purpose="batch")
    body = {k: (uploaded.id if v == "{file}" else v) for k, v in request_body.items()}
    response = client.post("batches", json=body)
    assert response.status_code == 400 and response.json()["error"]["code"] == code, response.text


def test_uploads_the_platform_would_refuse(client: httpx2.Client) -> None:
    refused = [
        client.post("files", files={"file": ("a.txt", b"{}")}, data={"purpose": "batch"}),  # not .jsonl
        client.post("files", files={"file": ("a.jsonl", b"{}")}, data={"purpose": "fine-tune"}),  # unknown purpose
        client.post("files", files={"file": ("a.jsonl", b"{}")}),  # no purpose
        client.post("files", json={"purpose": "batch"}),  # not multipart
    ]
    assert [(r.status_code, r.json()["error"]["code"]) for r in refused] == [
        (400, "1210"),
        (400, "1210"),
        (400, "1213"),
        (400, "1210"),
    ]


def test_files_and_batches_are_their_accounts_own(sdk: Any, emulator: Emulator) -> None:
    uploaded = sdk.files.create(file=("mine.jsonl", jsonl([line("a", "one")])), purpose="batch")
    created = sdk.batches.create(input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window="24h")
    other = zai.ZaiClient(api_key=OTHER_KEY, base_url=emulator.base_url, max_retries=0)
    try:
        calls: list[Callable[[], object]] = [
            lambda: other.batches.retrieve(created.id),
            lambda: other.batches.cancel(created.id),
            lambda: other.files.content(uploaded.id),
            lambda: other.batches.create(input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window="24h"),
        ]
        for call in calls:
            with pytest.raises(APIRequestFailedError):
                call()
        assert all(b.id != created.id for b in other.batches.list().data)
        assert all(f.id != uploaded.id for f in other.files.list().data)
    finally:
        other.close()


def test_lists_page_newest_first(sdk: Any) -> None:
    ids = []
    for i in range(3):
        uploaded = sdk.files.create(file=(f"l{i}.jsonl", jsonl([line("a", f"q{i}")])), purpose="batch")
        ids.append(sdk.batches.create(input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window="24h").id)
    first = sdk.batches.list(limit=2)
    assert [b.id for b in first.data] == ids[::-1][:2] and first.has_more
    second = first.get_next_page()
    assert second.data[0].id == ids[0]
    listed = sdk.files.list(purpose="batch", limit=100)
    assert all(f.purpose == "batch" for f in listed.data)


def test_a_batch_not_done_in_time_expires_with_what_was_done() -> None:
    config = EmulatorConfig(batch_validating=0.1, batch_item_seconds=0.2, batch_finalizing=0.1, batch_expiry=1.0)
    with Emulator(config) as emulator:
        sdk = zai.ZaiClient(api_key=GENERAL_KEY, base_url=emulator.base_url, max_retries=0)
        try:
            uploaded = sdk.files.create(
                file=("e.jsonl", jsonl([line(f"r{i}", f"q{i}") for i in range(20)])), purpose="batch"
            )
            created = sdk.batches.create(input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window="24h")
            batch, seen = until_ended(sdk, created.id)
            assert seen[-1] == "expired" and batch.expired_at is not None, seen
            done = batch.request_counts.completed
            assert 0 < done < 20
            assert len(contents(sdk, batch.output_file_id)) == done
        finally:
            sdk.close()
