"""Listing: the ``filter`` of endpoints.list and models.list (the subset the emulator understands) and paging.

Terms (joined by ``AND``): ``labels.KEY="VALUE"`` / ``labels.KEY!="VALUE"``, ``labels.KEY:*``,
``labels:KEY``, ``display_name`` / ``displayName`` and the resource id field with ``=`` / ``!=``.
Anything else is INVALID_ARGUMENT. With ``misread`` (the harsh case), a filter in a form the
endpoints.list documentation does not show (``AND``, a label key with ``-``, ``!=`` on a label)
matches nothing, without an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vertex_loadtest.rehearsal.vertex_emulator.status import ApiError

Resource = dict[str, Any]

_TERM = re.compile(
    r"""^(?:
        labels\.(?P<lkey>"[^"]+"|[A-Za-z0-9_-]+)\s*(?P<lop>=|!=|:)\s*(?P<lval>"[^"]*"|\*|[A-Za-z0-9_-]*)
      | labels\s*:\s*(?P<hkey>"[^"]+"|[A-Za-z0-9_-]+)
      | (?P<field>display_name|displayName|endpoint|model)\s*(?P<fop>=|!=)\s*(?P<fval>"[^"]*"|[A-Za-z0-9_.-]+)
    )$""",
    re.VERBOSE,
)

_DOCUMENTED_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class _Check:
    label: bool  # a label term (else a field term)
    name: str  # label key, or "displayName" / the id field
    operator: str  # "=", "!=" or "exists"
    value: str

    @property
    def documented(self) -> bool:
        """A form the endpoints.list documentation shows (``labels.myKey=value``, ``labels:myKey``, ...)."""
        return not self.label or (self.operator != "!=" and _DOCUMENTED_KEY.fullmatch(self.name) is not None)

    def holds(self, resource: Resource) -> bool:
        if self.label:
            labels: dict[str, str] = resource.get("labels", {})
            if self.operator == "exists":
                return self.name in labels
            return (labels.get(self.name) == self.value) == (self.operator == "=")
        if self.name == "displayName":
            actual = str(resource.get("displayName", ""))
        else:
            actual = str(resource["name"]).rsplit("/", 1)[-1]
        return (actual == self.value) == (self.operator == "=")


def _parse(term: str, id_field: str) -> _Check:
    match = _TERM.match(term)
    if match is None:
        raise ApiError(
            "INVALID_ARGUMENT",
            f"Unsupported filter term {term!r} (the emulator supports labels, "
            f"display_name and {id_field}, joined by AND).",
        )
    if match["lkey"]:
        raw = match["lval"]
        operator = "exists" if match["lop"] == ":" and raw == "*" else match["lop"].replace(":", "=")
        return _Check(True, match["lkey"].strip('"'), operator, raw.strip('"'))
    if match["hkey"]:
        return _Check(True, match["hkey"].strip('"'), "exists", "")
    name = "displayName" if match["field"] in ("display_name", "displayName") else match["field"]
    if name not in ("displayName", id_field):
        raise ApiError("INVALID_ARGUMENT", f"Unsupported filter field {match['field']!r}.")
    return _Check(False, name, match["fop"], match["fval"].strip('"'))


def compile_filter(text: str, *, id_field: str, misread: bool = False) -> Callable[[Resource], bool]:
    """The predicate of ``filter`` ``text``; ``misread``: undocumented forms match nothing."""
    terms = [t.strip() for t in re.split(r"\s+AND\s+", text.strip()) if t.strip()]
    checks = [_parse(term, id_field) for term in terms]
    if misread and (len(checks) > 1 or not all(check.documented for check in checks)):
        return lambda resource: False
    return lambda resource: all(check.holds(resource) for check in checks)


_TOKEN_PREFIX = "emulator-page-"


def paginate(
    items: list[Resource], page_size: str, page_token: str, default_size: int
) -> tuple[list[Resource], str]:
    """One page of ``items`` and the next page's token (empty on the last page).

    ``pageSize`` 0 or absent means ``default_size`` (also its cap); an unknown token is INVALID_ARGUMENT.
    """
    try:
        size = int(page_size or 0)
    except ValueError:
        raise ApiError("INVALID_ARGUMENT", f"pageSize {page_size!r} is not an integer.") from None
    if size < 0:
        raise ApiError("INVALID_ARGUMENT", f"pageSize must not be negative, not {size}.")
    size = max(1, min(size or default_size, default_size))
    start = _offset(page_token, len(items))
    page = items[start : start + size]
    return page, (_TOKEN_PREFIX + str(start + size)) if start + size < len(items) else ""


def _offset(page_token: str, count: int) -> int:
    if not page_token:
        return 0
    digits = page_token.removeprefix(_TOKEN_PREFIX)
    if page_token.startswith(_TOKEN_PREFIX) and digits.isdigit() and int(digits) <= count:
        return int(digits)
    raise ApiError("INVALID_ARGUMENT", f"Invalid page token {page_token!r}.")
