"""The file parser and speech-to-text of the emulator: documents really read, audio "heard", the platform's limits,
over a real socket with httpx2, and zai-sdk's own clients pointed at it (strict where its types can validate)."""

from __future__ import annotations

import base64
import io
import time
import zipfile
from typing import Any

import httpx2
import pytest

from glm_mcp.emulator import Emulator, EmulatorConfig
from glm_mcp.emulator.documents import extract
from rigs import documents
from tests.emulator.conftest import GENERAL_KEY

EMULATOR_CONFIG = EmulatorConfig(async_delay=0.2)


def parse(client: httpx2.Client, data: bytes, file_type: str, tool_type: str = "lite") -> httpx2.Response:
    form = {"tool_type": tool_type, "file_type": file_type}
    return client.post("/files/parser/create", data=form, files={"file": (f"doc.{file_type.lower()}", data)})


def parsed(client: httpx2.Client, task_id: str, format_type: str = "text") -> dict[str, Any]:
    for _ in range(200):
        answer: dict[str, Any] = client.get(f"/files/parser/result/{task_id}/{format_type}").json()
        if answer["status"] != "processing":
            return answer
        time.sleep(0.02)
    raise AssertionError("the parse never ended")


def transcribe(client: httpx2.Client, data: bytes, name: str = "a.wav", **fields: str) -> httpx2.Response:
    return client.post("/audio/transcriptions", data={"model": "glm-asr-2512", **fields}, files={"file": (name, data)})


def test_each_office_format_and_a_pdf_are_read_for_real() -> None:
    pages = [["Quarterly report (draft)", "Revenue rose 12%"], ["Page two: costs"]]
    assert extract(documents.pdf(pages), "PDF").text == "Quarterly report (draft)\nRevenue rose 12%\n\nPage two: costs"
    assert extract(documents.pdf(pages, compress=False), "PDF").pages == 2
    assert extract(documents.docx(["Dear team,", "Fish & chips <today>."]), "DOCX").text == (
        "Dear team,\nFish & chips <today>."
    )
    workbook = documents.xlsx({"Budget": [["item", "cost"], ["tea", "3"]], "Notes": [["none"]]})
    assert extract(workbook, "XLSX").text == "Budget\nitem\tcost\ntea\t3\n\nNotes\nnone"
    deck = extract(documents.pptx([["Roadmap", "Q3: ship"], ["Thanks"]]), "PPTX")
    assert (deck.text, deck.pages) == ("Roadmap\nQ3: ship\n\nThanks", 2)


def test_a_parse_task_processes_then_answers_text_or_a_download_link(client: httpx2.Client) -> None:
    created = parse(client, documents.pdf([["Hello from a PDF"]]), "PDF")
    assert created.status_code == 200
    body = created.json()
    assert body["success"] is True and body["message"] and body["task_id"]
    first = client.get(f"/files/parser/result/{body['task_id']}/text").json()
    assert first == {"status": "processing", "message": first["message"], "task_id": body["task_id"]}
    text = parsed(client, body["task_id"])
    assert text["status"] == "succeeded" and text["content"] == "Hello from a PDF" and "parsing_result_url" not in text
    link = parsed(client, body["task_id"], "download_link")
    assert "content" not in link
    archive = httpx2.get(link["parsing_result_url"])  # the storage host: no key
    assert zipfile.ZipFile(io.BytesIO(archive.content)).read("result.md") == b"Hello from a PDF"


def test_a_file_that_is_not_its_type_makes_a_failed_task(client: httpx2.Client) -> None:
    created = parse(client, b"not a pdf at all", "PDF").json()
    failed = parsed(client, created["task_id"])
    assert failed["status"] == "failed" and "not a PDF" in failed["message"]


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"tool_type": "fast", "file_type": "PDF"}, "1210"),
        ({"tool_type": "expert", "file_type": "DOCX"}, "1210"),  # Expert reads PDFs only
        ({"tool_type": "lite", "file_type": "HTML"}, "1210"),  # Prime's, not Lite's
        ({"tool_type": "lite", "file_type": "MP3"}, "1210"),
    ],
)
def test_the_parser_refuses_what_its_tools_do_not_take(client: httpx2.Client, form: dict[str, str], code: str) -> None:
    refused = client.post("/files/parser/create", data=form, files={"file": ("x", b"%PDF-1.4")})
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, code)


def test_the_parser_wants_a_file_in_a_form(client: httpx2.Client) -> None:
    missing = client.post("/files/parser/create", data={"tool_type": "lite", "file_type": "PDF"})
    assert missing.status_code == 400
    assert client.post("/files/parser/create", json={"tool_type": "lite"}).status_code == 400
    unknown = client.get("/files/parser/result/nope/text")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (400, "1210")
    task = parse(client, documents.docx(["x"]), "DOCX").json()["task_id"]
    assert client.get(f"/files/parser/result/{task}/html").status_code == 400


def test_the_sync_parser_answers_at_once(client: httpx2.Client) -> None:
    form = {"tool_type": "prime-sync", "file_type": "PPTX"}
    answer = client.post("/files/parser/sync", data=form, files={"file": ("d.pptx", documents.pptx([["Hi"]]))}).json()
    assert answer["status"] == "succeeded" and answer["content"] == "Hi" and answer["parsing_result_url"]
    lite = client.post("/files/parser/sync", data={**form, "tool_type": "lite"}, files={"file": ("d", b"x")})
    assert lite.status_code == 400


def test_speech_is_heard_within_the_platforms_limits(client: httpx2.Client) -> None:
    heard = transcribe(client, documents.wav(12.5, {1: "hello there", 6: "general kenobi"}), request_id="asr-req-1")
    assert heard.status_code == 200
    body = heard.json()
    assert body["text"] == "hello there general kenobi"
    assert body["model"] == "glm-asr-2512" and body["request_id"] == "asr-req-1" and body["id"] and body["created"]
    assert transcribe(client, documents.mp3(10, "an mp3 speaks"), "a.mp3").json()["text"] == "an mp3 speaks"
    assert transcribe(client, documents.wav(3)).json()["text"] == ""  # silence
    exactly = transcribe(client, documents.wav(30.0, {29: "last"}))
    assert exactly.json()["text"] == "last"
    encoded = base64.b64encode(documents.wav(2, {0.5: "from base64"})).decode()
    as_json = client.post("/audio/transcriptions", json={"model": "glm-asr-2512", "file_base64": encoded})
    assert as_json.json()["text"] == "from base64"  # without a file, zai-sdk sends a JSON body
    as_field = client.post(
        "/audio/transcriptions", data={"model": "glm-asr-2512", "file_base64": encoded}, files={"x": ("x", b"")}
    )
    assert as_field.json()["text"] == "from base64"


@pytest.mark.parametrize(
    ("audio", "name", "says"),
    [
        (documents.wav(30.5), "long.wav", "30.5 seconds"),
        (documents.mp3(31), "long.mp3", "30 seconds"),
        (b"OggS" + bytes(100), "a.ogg", "only wav and mp3"),
        (b"RIFF\x10\x00\x00\x00WAVEjunk", "a.wav", "damaged"),
    ],
)
def test_asr_refuses_what_the_platform_refuses(client: httpx2.Client, audio: bytes, name: str, says: str) -> None:
    refused = transcribe(client, audio, name)
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "1210")
    assert says in refused.json()["error"]["message"]


def test_asr_refuses_past_25_mb_and_unknown_models(client: httpx2.Client) -> None:
    big = documents.wav(25, rate=1_100_000)  # 27.5 MB of 25 s
    refused = transcribe(client, big)
    assert refused.status_code == 400 and "25 MB" in refused.json()["error"]["message"]
    wrong = client.post("/audio/transcriptions", data={"model": "whisper-1"}, files={"file": ("a.wav", b"")})
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (400, "1211")


def test_asr_streams_its_words_then_the_whole_text(client: httpx2.Client) -> None:
    with client.stream(
        "POST",
        "/audio/transcriptions",
        data={"model": "glm-asr-2512", "stream": "true"},
        files={"file": ("a.wav", documents.wav(5, {1: "three little words"}))},
    ) as streamed:
        assert streamed.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in streamed.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    events = [httpx2.Response(200, content=line[6:]).json() for line in lines[:-1]]
    assert "".join(e["delta"] for e in events if e["type"] == "transcript.text.delta") == "three little words"
    assert events[-1]["type"] == "transcript.text.done" and events[-1]["text"] == "three little words"


# --- zai-sdk's own clients ---------------------------------------------------------------------------------------


def test_zai_sdks_file_parser_and_transcriptions_accept_the_answers(emulator: Emulator) -> None:
    zai = pytest.importorskip("zai")
    with zai.ZaiClient(api_key=GENERAL_KEY, base_url=emulator.base_url, _strict_response_validation=True) as strict:
        task = strict.file_parser.create(
            file=("report.docx", documents.docx(["Minutes of the meeting"])), file_type="docx", tool_type="lite"
        )
        assert task.success is True and task.task_id
        for _ in range(200):
            result = strict.file_parser.content(task_id=task.task_id, format_type="text").json()
            if result["status"] != "processing":
                break
            time.sleep(0.02)
        assert result["status"] == "succeeded" and result["content"] == "Minutes of the meeting"
        with pytest.raises(zai.core.APIRequestFailedError):
            strict.file_parser.create(file=("x.docx", b"PK"), file_type="docx", tool_type="expert")
    # Two of its types cannot validate the documented answers, so those calls use its default, lenient parsing
    # (as three others do, test_sdks.py): `FileParsingDownloadResp.status` is a bool where the reference sends
    # "succeeded", and a transcription is cast to the chat `Completion`, whose `choices` and `usage` it lacks.
    with zai.ZaiClient(api_key=GENERAL_KEY, base_url=emulator.base_url, max_retries=0) as loose:
        synced = loose.file_parser.create_sync(
            file=("slides.pdf", documents.pdf([["Sync parse"]])), file_type="PDF", tool_type="prime-sync"
        )
        assert synced.status == "succeeded" and synced.content == "Sync parse" and synced.parsing_result_url
        answer = loose.audio.transcriptions.create(
            model="glm-asr-2512", file=("memo.wav", documents.wav(8, {2: "call me back"}))
        )
        assert answer.text == "call me back"
        with pytest.raises(zai.core.APIRequestFailedError):
            loose.audio.transcriptions.create(model="glm-asr-2512", file=("long.wav", documents.wav(31)))
        chunks = loose.audio.transcriptions.create(
            model="glm-asr-2512", file=("memo.wav", documents.wav(8, {2: "call me back"})), stream=True
        )
        assert "".join(getattr(chunk, "delta", "") or "" for chunk in chunks) == "call me back"
