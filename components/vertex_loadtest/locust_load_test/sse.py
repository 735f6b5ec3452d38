"""An incremental server-sent-events parser, fed raw bytes as they arrive. Pure Python.

Servers stream generated tokens as SSE (the WHATWG "event stream" format): lines ending in LF, CRLF
or CR; ``field: value`` lines (one space after the colon is optional and dropped); lines starting
with ``:`` are comments (keep-alives); a blank line ends an event, whose ``data`` lines are joined
with ``\\n``. A network read can end anywhere: mid-line, between the CR and LF of a CRLF, or after
several events, so the parser keeps the unfinished tail and emits each event with the arrival time
of the read that completed it (the caller stamps reads when the bytes arrive, not after parsing).
Where the reads fall never changes which events come out.
"""

from typing import NamedTuple


class Event(NamedTuple):
    """One dispatched event: its ``data`` (lines joined by ``\\n``), ``event`` type ("" if none),
    and ``at``, the arrival time of the read that completed it (the caller's clock)."""

    data: str
    event: str
    at: float


class EventParser:
    """Turns a byte stream into :class:`Event` values, read by read.

    ``feed(chunk, at)`` returns the events a read completed; ``close(at)`` the last one when the
    stream ended after a complete ``data`` line but without the blank line that should follow it
    (lenient: servers that forget it must not look broken). A cut mid-line is dropped.
    ``comments`` counts ``:`` lines (keep-alives).
    """

    __slots__ = ("_data", "_event", "_skip_lf", "_tail", "comments")

    def __init__(self) -> None:
        self._tail = b""
        self._skip_lf = False  # the last read ended with CR: a leading LF belongs to it
        self._data: list[str] = []
        self._event = ""
        self.comments = 0

    def feed(self, chunk: bytes, at: float) -> list[Event]:
        """Parses one read; returns the events it completed, each stamped ``at``."""
        if self._skip_lf and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._skip_lf = False
        if not chunk:
            return []
        buffer = self._tail + chunk if self._tail else chunk
        if b"\r" in buffer:
            self._skip_lf = buffer.endswith(b"\r")
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buffer.split(b"\n")
        self._tail = lines.pop()
        events: list[Event] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append(Event("\n".join(self._data), self._event, at))
                self._data = []
                self._event = ""
            elif line[0] == 58:  # b":"
                self.comments += 1
            else:
                self._field(line)
        return events

    def close(self, at: float) -> list[Event]:
        """Ends the stream; returns an event left without its closing blank line, if any."""
        events = [Event("\n".join(self._data), self._event, at)] if self._data else []
        self._tail, self._data, self._event, self._skip_lf = b"", [], "", False
        return events

    def _field(self, line: bytes) -> None:
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value.decode("utf-8", "replace"))
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        # id and retry do not matter to a load test; unknown fields are ignored, as the format says.
