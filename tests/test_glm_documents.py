"""The client's file parser and speech-to-text, against the emulator: multipart bodies signed with the key, typed
answers, the platform's refusals as `GLMAPIError`, and a paid upload never sent twice."""

from __future__ import annotations

import anyio
import pytest

from glm_mcp.emulator import Emulator
from glm_mcp.glm import Credentials, GLMAPIError, GLMClient, GLMTransportError, open_http_client
from glm_mcp.glm.errors import GLMProtocolError
from rigs import documents
from tests.conftest import GENERAL_KEY

pytestmark = pytest.mark.anyio


def _client(emulator: Emulator) -> GLMClient:
    return GLMClient(open_http_client(emulator.base_url, timeout=10, connect_timeout=5), Credentials(GENERAL_KEY))


async def test_a_document_is_parsed_as_a_task_whose_text_comes_when_it_succeeds(emulator: Emulator) -> None:
    emulator.config.async_delay = 0.2
    glm = _client(emulator)
    task = await glm.create_parse(
        documents.docx(["Budget for 2026", "Tea: 3"]), filename="budget.docx", file_type="DOCX"
    )
    assert (await glm.parse_result(task.task_id)).status == "processing"
    with anyio.fail_after(10):
        while (result := await glm.parse_result(task.task_id)).status == "processing":
            await anyio.sleep(0.05)
    assert result.status == "succeeded" and result.content == "Budget for 2026\nTea: 3"
    sent = next(e for e in emulator.state.exchanges if e.path.endswith("/files/parser/create"))
    assert sent.headers["authorization"] == f"Bearer {GENERAL_KEY}"
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert sent.body is not None and sent.body["tool_type"] == "lite" and sent.body["file_type"] == "DOCX"
    assert sent.body["file"]["filename"] == "budget.docx"


async def test_a_parse_task_id_that_is_no_id_is_refused_before_it_is_put_in_a_url(emulator: Emulator) -> None:
    """The id comes from an answer: checked like a file or batch id, not sent on (as `%2F`...) to some other path."""
    glm = _client(emulator)
    for task_id in ("../../files", "a/b", "", "x y"):
        with pytest.raises(GLMProtocolError):
            await glm.parse_result(task_id)
    assert not any("/files/parser/result" in e.path for e in emulator.state.exchanges)


async def test_speech_to_text_reads_a_recording_and_the_platforms_refusals_are_api_errors(emulator: Emulator) -> None:
    glm = _client(emulator)
    heard = await glm.transcribe(
        documents.wav(10, {2: "good morning"}), filename="a.wav", media_type="audio/wav", prompt="earlier words"
    )
    assert heard.text == "good morning" and heard.model == "glm-asr-2512"
    assert emulator.state.exchanges[-1].body["prompt"] == "earlier words"  # type: ignore[index]
    with pytest.raises(GLMAPIError) as refused:
        await glm.transcribe(documents.wav(31), filename="long.wav", media_type="audio/wav")
    assert refused.value.code == "1210" and "30 seconds" in refused.value.message


async def test_a_paid_upload_that_may_have_arrived_is_not_sent_again(emulator: Emulator) -> None:
    glm = _client(emulator)
    emulator.inject("drop", path="/files/parser/create")
    with pytest.raises(GLMTransportError):
        await glm.create_parse(documents.pdf([["x"]]), filename="x.pdf", file_type="PDF")
    emulator.inject("drop", path="/audio/transcriptions")
    with pytest.raises(GLMTransportError):
        await glm.transcribe(documents.wav(1), filename="x.wav", media_type="audio/wav")
    assert [e.path.rsplit("/", 2)[-2:] for e in emulator.state.exchanges] == [
        ["parser", "create"],
        ["audio", "transcriptions"],
    ]
