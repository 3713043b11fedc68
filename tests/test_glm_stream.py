"""The pieces of a streamed answer fold into the completion a non-streamed call returns."""

from __future__ import annotations

import json
from collections.abc import Mapping

from glm_mcp.glm import StreamAccumulator
from glm_mcp.glm.types import ChatCompletionChunk


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
