"""What a handler gets (one API call) and may answer besides JSON (raw bytes with headers)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vertex_loadtest.rehearsal.vertex_emulator.validation import json_body


@dataclass(frozen=True)
class Call:
    """One API call routed to a handler.

    Args:
        name: The resource the path names (the parent for list/create/upload), with the project number
            when the emulator has one.
        query: The declared parameters of the query string (last value of each).
        body: The raw request body.
        params: The query parameters the route declares; reading any other is a bug in the emulator.
    """

    name: str
    query: Mapping[str, str]
    body: bytes = b""
    params: frozenset[str] = field(default_factory=frozenset)

    def param(self, key: str, default: str = "") -> str:
        """Query parameter ``key``, which the route must declare (the discovery test holds them to it)."""
        if key not in self.params:
            raise AssertionError(f"the handler of {self.name} reads undeclared query parameter {key!r}")
        return self.query.get(key, default)

    def json(self) -> dict[str, Any]:
        return json_body(self.body)


@dataclass(frozen=True)
class RawReply:
    """Bytes answered as they are (``:rawPredict``), with extra response headers."""

    data: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


Reply = dict[str, Any] | RawReply
