"""Prompts of a generative run: a JSONL file, or synthetic prompts of a given length. Pure Python.

A JSONL line holds a ``messages`` list (OpenAI chat messages) or a ``prompt`` string (sent as one
user message), an optional ``max_tokens``, and any other body field to pass through (``model``,
``temperature``, ...). Synthetic prompts draw their input and output lengths uniformly within
``spread`` (a fraction) of the given means, seeded, and fill the input with common one-token words,
so a prompt of N words is about N tokens (the server's ``usage.prompt_tokens`` has the real count).
"""

import json
import random
from pathlib import Path
from typing import Any

from vertex_loadtest.errors import BadInput

#: Synthetic prompts made for a run; users cycle through them.
SYNTHETIC_PROMPTS = 256
_WORDS = (  # noqa: SIM905 - one readable line of words
    "the of and to in is that for it as was with be by on not he this are or his from at which but have an "
    "they you were her she there one all we their been has would when if more no out do so can what up said "
    "about other into time them then some these may only new could its our two first any my now such like "
    "over me even most made after also did many way well"
).split()


def load_jsonl(path: Path, uri: str) -> list[dict[str, Any]]:
    """Returns the prompts of a JSONL file as request bodies (``messages`` plus other fields).

    Raises:
        BadInput: a line is not JSON, has neither ``messages`` nor ``prompt``, or a bad ``max_tokens``.
    """
    prompts = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as error:
            raise BadInput(f"prompts {uri} line {number} is not JSON: {error}") from None
        prompts.append(_body(record, f"prompts {uri} line {number}"))
    if not prompts:
        raise BadInput(f"prompts {uri} hold no prompt: give one JSON object per line with messages or prompt")
    return prompts


def _body(record: Any, where: str) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise BadInput(f'{where} is not a JSON object: write {{"messages": [...]}} or {{"prompt": "..."}}')
    body = dict(record)
    if "prompt" in body and "messages" not in body:
        prompt = body.pop("prompt")
        if not isinstance(prompt, str):
            raise BadInput(f'{where}: "prompt" must be a string')
        body["messages"] = [{"role": "user", "content": prompt}]
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise BadInput(
            f'{where} needs a "messages" list of objects like {{"role": "user", "content": "..."}}, '
            f'or a "prompt" string'
        )
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise BadInput(f'{where}: "max_tokens" must be a whole number of at least 1, got {max_tokens!r}')
    return body


def synthetic(
    input_tokens: int, output_tokens: int, spread: float = 0.0, seed: int = 0
) -> list[dict[str, Any]]:
    """Returns seeded synthetic prompts of about ``input_tokens`` words asking for ``output_tokens``.

    Args:
        input_tokens: Mean prompt length in tokens (words); at least 1.
        output_tokens: Mean ``max_tokens``; 0 leaves it to ``--max-tokens`` or the server.
        spread: Lengths are drawn uniformly within this fraction of the means (0: exact; below 1).
        seed: Seed of the draw: the same arguments give the same prompts.

    Raises:
        BadInput: a length below its minimum, or a spread outside [0, 1).
    """
    if input_tokens < 1 or output_tokens < 0:
        raise BadInput(
            f"input_tokens {input_tokens} must be at least 1 and output_tokens {output_tokens} at least 0"
        )
    if not 0 <= spread < 1:
        raise BadInput(f"token spread {spread!r} must be a fraction from 0 (exact lengths) up to below 1")
    draw = random.Random(seed)

    def length(mean: int) -> int:
        return max(1, round(mean * (1 + draw.uniform(-spread, spread))))

    prompts = []
    for _ in range(SYNTHETIC_PROMPTS):
        words = [draw.choice(_WORDS) for _ in range(length(input_tokens))]
        body: dict[str, Any] = {"messages": [{"role": "user", "content": " ".join(words)}]}
        if output_tokens:
            body["max_tokens"] = length(output_tokens)
        prompts.append(body)
    return prompts
