"""The pieces of a streamed answer fold into the completion a non-streamed call returns."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest

from glm_mcp.glm import AuthMode, Credentials, StreamAccumulator
from glm_mcp.glm.types import ChatCompletionChunk
from glm_mcp.server.progress import TAIL_CHARS as TAIL

SECRET = "s3cr3t-half-that-must-never-leak-9f2c"
KEY = f"echoid.{SECRET}"


def chunk(delta: Mapping[str, object], finish_reason: str | None = None) -> ChatCompletionChunk:
    return ChatCompletionChunk.model_validate(
        {"id": "c1", "model": "glm-4.6", "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
    )


def test_tool_call_argument_pieces_are_joined_by_index() -> None:
    """The platform streams a call's arguments in pieces, each naming only its index after the first."""
    accumulator = StreamAccumulator()
    pieces = [
        {"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather"}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]},
        {"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "get_time", "arguments": "{}"}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '"Beijing"}'}}]},
    ]
    for delta in pieces:
        accumulator.add(chunk(delta))
    accumulator.add(chunk({}, finish_reason="tool_calls"))
    calls = accumulator.completion().message.tool_calls or []
    assert [(c.id, c.function.name, c.index) for c in calls] == [
        ("call_a", "get_weather", 0),
        ("call_b", "get_time", 1),
    ]
    assert json.loads(calls[0].function.arguments) == {"city": "Beijing"}
    assert calls[1].function.arguments == "{}"
    assert accumulator.completion().finish_reason == "tool_calls"


def test_text_and_reasoning_are_concatenated_and_counted() -> None:
    accumulator = StreamAccumulator()
    for delta in (
        {"reasoning_content": "think "},
        {"reasoning_content": "more"},
        {"content": "An"},
        {"content": "swer"},
    ):
        accumulator.add(chunk(delta))
    message = accumulator.completion().message
    assert (message.content, message.reasoning_content) == ("Answer", "think more")
    assert (accumulator.content_chars, accumulator.reasoning_chars, accumulator.chunks) == (6, 10, 4)
    assert accumulator.tail(4) == "swer"


def _secret_parts(credentials: Credentials) -> list[str]:
    """What of the key's forms must never show: the secret half, and a signed token's signature."""
    return [credentials.secret_strings()[-1 if credentials.mode == "bearer" else 0].rpartition(".")[2], SECRET]


@pytest.mark.parametrize("mode", ["bearer", "jwt"])
@pytest.mark.parametrize("finished", [False, True], ids=["running", "finished"])
def test_the_tail_is_scrubbed_wherever_its_cut_falls_inside_a_form(mode: AuthMode, finished: bool) -> None:
    """Progress shows the last characters of the answer: a cut inside a form must show neither its start (not
    scrubbed without its end) nor its end (what a form left is no form either). The form is echoed twice: the
    second, shorter once scrubbed, pulls the cut back into the first."""
    credentials = Credentials(KEY, mode=mode)
    credentials.authorization()
    for form in credentials.secret_strings():
        for after in range(TAIL + 2):
            text = "x" * 100 + form + form + "y" * after
            accumulator = StreamAccumulator(credentials=credentials)
            for start in range(0, len(text), 7):  # pieces of 7 characters: the form spans several
                accumulator.add(chunk({"content": text[start : start + 7]}))
            if finished:
                accumulator.add(chunk({}, finish_reason="stop"))
            tail = accumulator.tail(TAIL)
            for secret in _secret_parts(credentials):
                pieces = {secret[i : i + 9] for i in range(len(secret) - 8)}
                assert not any(piece in tail for piece in pieces), (form, after, tail)
            end = ("<redacted>" + "y" * after)[-TAIL:]
            assert tail.endswith(end[-len(tail) :]) and len(tail) > TAIL - len(form), (form, after, tail)


def test_a_form_split_across_pieces_is_whole_in_the_text_and_a_running_end_is_held_back() -> None:
    credentials = Credentials(KEY)
    accumulator = StreamAccumulator(credentials=credentials)
    accumulator.add(chunk({"content": "key: " + KEY[:20]}))
    assert accumulator.text == "key: "  # the start of the key, whose end has not come, is not shown
    accumulator.add(chunk({"content": KEY[20:] + " (echoed)"}))
    assert accumulator.text == "key: <redacted> (echoed)"
    accumulator.add(chunk({"content": " and " + SECRET[:12]}))
    accumulator.add(chunk({}, finish_reason="stop"))  # the upstream stopped inside a second echo
    assert accumulator.completion().message.content == "key: <redacted> (echoed) and <redacted>"
