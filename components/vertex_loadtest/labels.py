"""Resource labels this library puts on what a run creates, and the one way to spell their values.

Vertex AI accepts at most 64 labels per resource, keys and values of at most 64 characters (its
schema's own limit; most other Google Cloud services stop at 63) made of lowercase letters
(international ones too: ``é``, ``ß``, ``ж``, and letters without case such as ``日``), digits, ``_``
and ``-``; a key starts with a letter. A pipeline job name such as ``Deploy_and_Test-20261125074417``
is not always a valid value, so the reference pipeline (which labels the endpoint) and the cleanup
exit task (which finds it by that label) both call :func:`sanitize_label_value` on the job name:
the same input always gives the same label.
"""

import hashlib
import re
import unicodedata
from collections.abc import Mapping

#: The label the reference pipeline puts on every endpoint (and model) a run creates; its value is
#: ``sanitize_label_value(<the run's job name>)``. The cleanup and the sweeper discover by it.
RUN_LABEL_KEY = "vertex-loadtest-run"

#: What Vertex AI accepts (the v1 discovery document's ``labels`` description: 64 code points).
MAX_LABEL_LENGTH = 64
#: What :func:`sanitize_label_value` writes: 63, the Cloud-wide limit, so a run label fits anywhere.
SANITIZED_LABEL_LENGTH = 63
MAX_LABELS = 64
_INVALID = re.compile(r"[^a-z0-9_-]+")
#: Unicode categories of the letters a label may hold: lowercase (Ll) and caseless (Lo); with numbers
#: (N*), ``_`` and ``-`` they make Google Cloud's label pattern ``[\p{Ll}\p{Lo}][\p{Ll}\p{Lo}\p{N}_-]{0,62}``.
_LETTERS = frozenset({"Ll", "Lo"})


def sanitize_label_value(text: str) -> str:
    """Turns any text (a pipeline job name) into a valid label value, deterministically.

    Lowercases, replaces each run of other characters with ``-`` and trims ``-`` at both ends. A
    result longer than 63 characters keeps its first 54 characters plus ``-`` and 8 hex digits of a
    hash of the original text, so two long job names that share a prefix still get distinct labels.

    Args:
        text: Any string, typically ``dsl.PIPELINE_JOB_NAME_PLACEHOLDER`` resolved.

    Returns:
        A label value matching ``[a-z0-9_-]{0,63}``.
    """
    value = _INVALID.sub("-", text.lower()).strip("-")
    if len(value) > SANITIZED_LABEL_LENGTH:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
        value = f"{value[: SANITIZED_LABEL_LENGTH - 9].rstrip('-')}-{digest}"
    return value


def _is_letter(char: str) -> bool:
    return unicodedata.category(char) in _LETTERS


def _is_label_char(char: str) -> bool:
    return _is_letter(char) or unicodedata.category(char).startswith("N") or char in "_-"


def is_valid_label_key(key: str) -> bool:
    """True when ``key`` is a label key Vertex AI accepts: a letter, then up to 63 label characters."""
    return 0 < len(key) <= MAX_LABEL_LENGTH and _is_letter(key[0]) and all(_is_label_char(c) for c in key)


def is_valid_label_value(value: str) -> bool:
    """True when ``value`` is a label value Vertex AI accepts (empty is allowed)."""
    return len(value) <= MAX_LABEL_LENGTH and all(_is_label_char(c) for c in value)


def label_problem(labels: Mapping[str, str]) -> str:
    """What Google Cloud would refuse in ``labels`` ("" when it accepts them all).

    Args:
        labels: Label keys and values, e.g. ``{"team": "ml-serving"}``.

    Returns:
        A sentence naming the first refused label and the rule, or "".
    """
    if len(labels) > MAX_LABELS:
        return f"{len(labels)} labels given; a resource carries at most {MAX_LABELS}"
    for key, value in labels.items():
        if not is_valid_label_key(key) or not is_valid_label_value(value):
            return (
                f"label {key}={value!r} is not a label Vertex AI accepts: keys start with a lowercase "
                f"letter, keys and values hold at most {MAX_LABEL_LENGTH} lowercase letters (international "
                "ones too), digits, '_' and '-'"
            )
    return ""


def run_labels(run_name: str, key: str = RUN_LABEL_KEY) -> dict[str, str]:
    """The labels a run puts on what it creates: ``{key: sanitize_label_value(run_name)}``."""
    return {key: sanitize_label_value(run_name)}
