"""The event-stream reader (`glm.sse.SSEDecoder`): the SDK's rules wherever the pieces are cut, and its byte bound."""

from __future__ import annotations

import pytest

from glm_mcp.glm.sse import EventTooLarge, SSEDecoder

BOUND = 1024

STREAM = (
    b": keep-alive\n\n"
    b'data:{"a":1}\n\n'  # no space after the colon
    b'data: {"b":\r\ndata: 2}\r\n\r\n'  # CRLF, two data lines joined with LF
    b"id: 7\revent: x\r\r"  # CR alone; an event without data gives nothing
    b"data:\n\n"  # an empty data line: an event whose data is empty
    b"data:  two spaces\nretry: 5\nnot a field\n\n"  # only one space is removed; unknown lines skipped
    b"data: [DONE]\n\n"
    b"data: unfinished"  # dropped: the stream ends before its blank line
)
EVENTS = [b'{"a":1}', b'{"b":\n2}', b"", b" two spaces", b"[DONE]"]


def _read(pieces: list[bytes], bound: int = BOUND) -> list[bytes]:
    decoder = SSEDecoder(bound)
    return [data for piece in pieces for data in decoder.feed(piece)]


def test_the_sdk_rules_in_one_piece() -> None:
    assert _read([STREAM]) == EVENTS


def test_the_same_events_wherever_the_stream_is_cut() -> None:
    """Every cut into two pieces (a CRLF split between them, a field name, a line's end) and one byte at a time."""
    for cut in range(len(STREAM) + 1):
        assert _read([STREAM[:cut], STREAM[cut:]]) == EVENTS, cut
    assert _read([STREAM[i : i + 1] for i in range(len(STREAM))]) == EVENTS


def test_an_endless_line_is_refused_once_it_passes_the_bound() -> None:
    decoder = SSEDecoder(BOUND)
    held = 0
    with pytest.raises(EventTooLarge):
        while True:
            decoder.feed(b"data: " + b"z" * 100)
            held += 106
            assert held <= BOUND, "the decoder kept reading past its bound"


def test_an_endless_line_in_one_piece_is_refused_at_once() -> None:
    with pytest.raises(EventTooLarge):
        SSEDecoder(BOUND).feed(b"z" * (BOUND + 1))
    with pytest.raises(EventTooLarge):
        SSEDecoder(BOUND).feed(b"data: " + b"z" * BOUND + b"\n")


def test_an_event_of_many_lines_is_bounded_as_a_whole() -> None:
    decoder = SSEDecoder(BOUND)
    with pytest.raises(EventTooLarge):
        for _ in range(BOUND):
            decoder.feed(b"data: 0123456789\n")


def test_the_bound_is_per_event_and_comments_do_not_count() -> None:
    """Many events, and many comments, each well under the bound: all of them read."""
    event = b"data: " + b"x" * (BOUND // 2) + b"\n\n"
    comment = b": " + b"k" * (BOUND // 2) + b"\n"
    assert _read([event] * 50 + [comment] * 50 + [event]) == [b"x" * (BOUND // 2)] * 51
