"""Request payloads: a JSONL file of request bodies or instances, or inline JSON, checked up front
against Vertex AI's online prediction limit so a bad payload fails before any load is sent.
"""

import json
from pathlib import Path
from typing import Any

from vertex_loadtest.errors import BadInput

#: Vertex AI online prediction rejects request bodies over ~1.5 MB.
MAX_REQUEST_BYTES = 1_500_000


def load_jsonl(path: Path, uri: str) -> list[Any]:
    """Returns the records of a JSONL file; each line is a request body or one instance."""
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError as error:
            raise BadInput(f"payloads {uri} line {number} is not JSON: {error}") from None
    return check(records, uri)


def parse_inline(text: str) -> list[Any]:
    """Returns the records of inline JSON: a list of instances, or one request body."""
    try:
        value = json.loads(text)
    except ValueError as error:
        raise BadInput(f"instances {text[:80]!r} is not JSON: {error}") from None
    if isinstance(value, dict) and "instances" in value:
        return check([value], "inline instances")
    if isinstance(value, list):
        return check(value, "inline instances")
    raise BadInput('instances must be a JSON list of instances or a body like {"instances": [...]}')


def check(records: list[Any], source: str) -> list[Any]:
    if not records:
        raise BadInput(f"payloads {source} hold no request: give at least one instance")
    for number, record in enumerate(records, start=1):
        body = record if isinstance(record, dict) and "instances" in record else {"instances": [record]}
        if not isinstance(body["instances"], list):
            raise BadInput(f'payloads {source} record {number}: "instances" must be a list')
        size = len(json.dumps(body).encode())
        if size > MAX_REQUEST_BYTES:
            raise BadInput(
                f"payloads {source} record {number} makes a {size:,}-byte request; Vertex AI online "
                f"prediction accepts at most {MAX_REQUEST_BYTES:,} bytes: split it into smaller requests"
            )
    return records
