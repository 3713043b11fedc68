"""Server-sent events read from a stream of bytes, as the official SDK reads them, within a byte bound.

A GLM stream is `data: <json>` lines, each event ended by a blank line, then `data: [DONE]`. The
rules are the SDK's (and the SSE specification's, as far as a GLM stream needs them): a line ends
with LF, CRLF or CR; a line starting with `:` is a comment, ignored; `data:` is followed by its value,
one leading space removed; several `data` lines of one event are joined with LF; other fields (`event`,
`id`, `retry`) carry nothing a chat needs and are skipped; a blank line ends the event. An event left
unfinished when the stream ends is dropped.

The reader works on the bytes (a chunk is parsed from its bytes, never decoded to text first) and is
bounded: the line still arriving, plus the lines of its event so far, may not pass `max_event_bytes`, so
an endless line or a decompression bomb is refused after at most that many bytes are held (plus the one
piece the HTTP client hands over at a time).
"""

from __future__ import annotations

__all__ = ["EventTooLarge", "SSEDecoder"]


class EventTooLarge(Exception):
    """An event (or a line of one) passed the decoder's byte bound."""

    def __init__(self, max_event_bytes: int) -> None:
        super().__init__(f"a server-sent event passed {max_event_bytes} bytes")
        self.max_event_bytes = max_event_bytes


class SSEDecoder:
    """Turns pieces of an event stream's bytes into the data of each complete event (`feed`)."""

    __slots__ = ("_cr", "_data", "_event_bytes", "_line", "_line_bytes", "_max")

    def __init__(self, max_event_bytes: int) -> None:
        self._max = max_event_bytes
        self._line: list[bytes] = []
        """The line still arriving, in the pieces it came in (joined once it ends: no quadratic copying)."""
        self._line_bytes = 0
        self._data: list[bytes] = []
        self._event_bytes = 0
        """Bytes of the current event's lines so far (comments not counted)."""
        self._cr = False
        """The last piece ended with CR: an LF starting the next one belongs to it."""

    def feed(self, piece: bytes) -> list[bytes]:
        """The data of every event `piece` completes, in order (an event without data lines gives nothing).

        Raises `EventTooLarge` once the current line and event together pass the bound.
        """
        if self._cr:
            self._cr = False
            if piece.startswith(b"\n"):
                piece = piece[1:]
        if b"\r" in piece:
            if piece.endswith(b"\r"):
                self._cr = True
            piece = piece.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = piece.split(b"\n")
        rest = lines.pop()  # the start of a line still arriving ("" when the piece ended with a line)
        completed: list[bytes] = []
        if lines:
            if self._line:
                self._line.append(lines[0])
                lines[0] = b"".join(self._line)
                self._line.clear()
                self._line_bytes = 0
            # One loop over the lines, inline: it runs for every token of every stream.
            data = self._data
            for line in lines:
                if not line:  # a blank line ends the event
                    if data:
                        completed.append(data[0] if len(data) == 1 else b"\n".join(data))
                        data = self._data = []
                    self._event_bytes = 0
                    continue
                if line[0] == 0x3A:  # ":" a comment
                    continue
                self._event_bytes += len(line)
                if self._event_bytes > self._max:
                    raise EventTooLarge(self._max)
                name, _, value = line.partition(b":")
                if name == b"data":
                    data.append(value[1:] if value[:1] == b" " else value)
        if rest:
            self._line.append(rest)
            self._line_bytes += len(rest)
        if self._event_bytes + self._line_bytes > self._max:
            raise EventTooLarge(self._max)
        return completed
