"""What the service refuses before doing anything: bad JSON, ids, labels, traffic splits, page tokens."""

from __future__ import annotations

import json
import re
from typing import Any

from vertex_loadtest.labels import label_problem
from vertex_loadtest.rehearsal.vertex_emulator.status import ApiError

#: Limits quoted from the discovery document's field descriptions (a test pins them there); the label
#: rules are ``vertex_loadtest.labels`` (one rule for the service and the cleanup).
MAX_DISPLAY_NAME_CHARS = 128
#: ``endpointId``: at most 9 digits without a leading zero, or a lowercase letter, then up to 62 of
#: ``[a-z0-9-]``, ending with a letter or digit.
MAX_NUMERIC_ENDPOINT_ID_DIGITS = 9
MAX_ENDPOINT_ID_CHARS = 63
_NUMERIC_ENDPOINT_ID = re.compile(rf"[1-9][0-9]{{0,{MAX_NUMERIC_ENDPOINT_ID_DIGITS - 1}}}")
_NAMED_ENDPOINT_ID = re.compile(rf"[a-z](?:[a-z0-9-]{{0,{MAX_ENDPOINT_ID_CHARS - 2}}}[a-z0-9])?")


def json_body(body: bytes) -> dict[str, Any]:
    """The request's JSON object (``{}`` for an empty body); malformed JSON is INVALID_ARGUMENT."""
    if not body:
        return {}
    try:
        data = json.loads(body)
    except ValueError as error:
        raise ApiError("INVALID_ARGUMENT", f"Invalid JSON payload received: {error}") from error
    if not isinstance(data, dict):
        raise ApiError("INVALID_ARGUMENT", "Invalid JSON payload received: expected an object.")
    return data


def validate_labels(labels: Any) -> dict[str, str]:
    """The labels, or INVALID_ARGUMENT naming the first one the service would refuse."""
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise ApiError("INVALID_ARGUMENT", "labels must be a map of strings to strings.")
    problem = label_problem(labels)
    if problem:
        raise ApiError("INVALID_ARGUMENT", f"Invalid labels: {problem}.")
    return dict(labels)


def validate_display_name(display_name: Any, what: str) -> str:
    """A required display name of at most ``MAX_DISPLAY_NAME_CHARS`` characters."""
    if not isinstance(display_name, str) or not display_name:
        raise ApiError("INVALID_ARGUMENT", f"{what} display_name is required.")
    if len(display_name) > MAX_DISPLAY_NAME_CHARS:
        raise ApiError(
            "INVALID_ARGUMENT",
            f"{what} display_name is {len(display_name)} characters; at most {MAX_DISPLAY_NAME_CHARS}.",
        )
    return display_name


def validate_endpoint_id(endpoint_id: str) -> str:
    """A user-chosen ``endpointId`` in one of its documented forms, else INVALID_ARGUMENT."""
    if _NUMERIC_ENDPOINT_ID.fullmatch(endpoint_id) or _NAMED_ENDPOINT_ID.fullmatch(endpoint_id):
        return endpoint_id
    raise ApiError(
        "INVALID_ARGUMENT",
        f"endpoint_id {endpoint_id!r} is invalid: use at most {MAX_NUMERIC_ENDPOINT_ID_DIGITS} digits "
        f"without a leading zero, or at most {MAX_ENDPOINT_ID_CHARS} lowercase letters, digits or '-', "
        "starting with a letter and ending with a letter or digit.",
    )


def parse_split(raw: Any) -> dict[str, int]:
    """A traffic split from JSON (values may arrive as strings) as ``{deployed model id: percent}``."""
    if not raw:
        return {}
    if not isinstance(raw, dict):
        raise ApiError("INVALID_ARGUMENT", "traffic_split must be a map of DeployedModel ids to percentages.")
    try:
        return {str(key): int(value) for key, value in raw.items()}
    except (TypeError, ValueError) as error:
        raise ApiError("INVALID_ARGUMENT", f"traffic_split percentages must be integers: {error}") from error


def validate_split(split: dict[str, int], deployed_ids: list[str]) -> None:
    """As documented: only ids on the endpoint, 0 to 100 each, adding up to 100; empty is allowed.

    A DeployedModel the split does not name gets no traffic.
    """
    unknown = sorted(set(split) - set(deployed_ids))
    if unknown:
        raise ApiError(
            "INVALID_ARGUMENT",
            f"traffic_split names DeployedModel(s) {unknown} that are not on the Endpoint.",
        )
    if any(v < 0 or v > 100 for v in split.values()):
        raise ApiError("INVALID_ARGUMENT", "traffic_split percentages must be between 0 and 100.")
    total = sum(split.values())
    if split and total != 100:
        raise ApiError("INVALID_ARGUMENT", f"traffic_split percentages must add up to 100, not {total}.")
