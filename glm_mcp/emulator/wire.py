"""The JSON shapes of the API: completions, stream chunks, and their ids.

A stream is the completion cut into chunks, and ``assemble`` folds chunks back into the
completion, so a streamed answer can be recorded and compared in the non-streamed shape.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from .generation import Reply

WORDS_PER_PIECE = 3
ARGUMENT_CHARS_PER_PIECE = 12


@dataclass(frozen=True)
class Envelope:
    """What identifies one answer on the wire."""

    id: str
    request_id: str
    created: int
    model: str


def new_envelope(model: str, request_id: str | None, answer_id: str | None = None) -> Envelope:
    """A fresh identity; the request id defaults to the answer id as on the platform."""
    answer_id = answer_id or completion_id()
    return Envelope(answer_id, request_id or answer_id, int(time.time()), model)


def completion_id() -> str:
    """``yyyyMMddHHmmss`` (local time) followed by 16 hex digits, like the platform's ids."""
    return time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(8)


def task_id() -> str:
    """25 digits: a 13-digit millisecond timestamp and 12 random digits (real ids are long digit strings)."""
    return f"{time.time_ns() // 1_000_000:013d}{secrets.randbelow(10**12):012d}"


def completion(
    envelope: Envelope,
    message: dict[str, Any],
    finish_reason: str | None,
    usage: dict[str, Any] | None,
    web_search: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """The ``chat.completion`` object; the one builder behind answered and assembled completions."""
    body: dict[str, Any] = {
        "id": envelope.id,
        "request_id": envelope.request_id,
        "created": envelope.created,
        "model": envelope.model,
        "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": finish_reason, "message": message}],
    }
    if usage is not None:
        body["usage"] = usage
    if web_search is not None:
        body["web_search"] = web_search
    return body


def completion_body(envelope: Envelope, reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.reasoning:
        message["reasoning_content"] = reply.reasoning
    if reply.tool_calls:
        message["tool_calls"] = list(reply.tool_calls)
    return completion(envelope, message, reply.finish_reason, usage_body(reply), reply.web_search)


def usage_body(reply: Reply) -> dict[str, Any]:
    usage = reply.usage
    body: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }
    if usage.reasoning_tokens is not None:
        body["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return body


def chunks(envelope: Envelope, reply: Reply, tool_stream: bool) -> list[dict[str, Any]]:
    """The stream: reasoning pieces, content pieces, tool calls, then the chunk that finishes.

    Sources ride on the first chunk with ``result_sequence: "before"``, otherwise on the last.
    """
    deltas: list[dict[str, Any]] = [{"reasoning_content": piece} for piece in _pieces(reply.reasoning or "")]
    deltas += [{"content": piece} for piece in _pieces(reply.content)]
    for call in reply.tool_calls:
        deltas += _call_deltas(call) if tool_stream else [{"tool_calls": [call]}]
    events = [_chunk(envelope, delta) for delta in deltas]
    last = _chunk(envelope, {"content": ""}, reply.finish_reason)
    last["usage"] = usage_body(reply)
    events.append(last)
    if reply.web_search is not None:
        events[0 if reply.results_first else -1]["web_search"] = reply.web_search
    return events


def assemble(envelope: Envelope, events: list[dict[str, Any]]) -> dict[str, Any]:
    """Fold stream chunks into the completion they carry (partial when the stream was cut)."""
    reasoning: list[str] = []
    content: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish_reason = usage = web_search = None
    for event in events:
        choice = event["choices"][0]
        delta = choice["delta"]
        if "reasoning_content" in delta:
            reasoning.append(delta["reasoning_content"])
        content.append(delta.get("content") or "")
        for fragment in delta.get("tool_calls", ()):
            call = calls.setdefault(
                fragment["index"],
                {"id": None, "index": fragment["index"], "type": "function", "function": {"name": "", "arguments": ""}},
            )
            call["id"] = fragment.get("id", call["id"])
            call["function"]["name"] += fragment["function"].get("name", "")
            call["function"]["arguments"] += fragment["function"].get("arguments", "")
        finish_reason = choice.get("finish_reason", finish_reason)
        usage = event.get("usage", usage)
        web_search = event.get("web_search", web_search)
    message: dict[str, Any] = {"role": "assistant", "content": "".join(content)}
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return completion(envelope, message, finish_reason, usage, web_search)


def _chunk(envelope: Envelope, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0}
    if finish_reason is not None:
        choice["finish_reason"] = finish_reason
    choice["delta"] = {"role": "assistant", **delta}
    return {"id": envelope.id, "created": envelope.created, "model": envelope.model, "choices": [choice]}


def _pieces(text: str) -> list[str]:
    """A few words per piece; the pieces concatenate back to ``text`` exactly."""
    words = re.findall(r"\S+\s*|\s+", text)
    return ["".join(words[i : i + WORDS_PER_PIECE]) for i in range(0, len(words), WORDS_PER_PIECE)]


def _call_deltas(call: dict[str, Any]) -> list[dict[str, Any]]:
    """With ``tool_stream``: the call's head, then its arguments a few characters at a time."""
    arguments = call["function"]["arguments"]
    head = {**call, "function": {"name": call["function"]["name"], "arguments": ""}}
    tail = [
        {
            "tool_calls": [
                {"index": call["index"], "function": {"arguments": arguments[i : i + ARGUMENT_CHARS_PER_PIECE]}}
            ]
        }
        for i in range(0, len(arguments), ARGUMENT_CHARS_PER_PIECE)
    ]
    return [{"tool_calls": [head]}, *tail]
