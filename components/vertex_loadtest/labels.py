"""Resource labels this library puts on what a run creates, and the one way to spell their values.

Vertex AI (like every Google Cloud resource) accepts label keys and values of at most 63 characters
made of lowercase letters, digits, ``_`` and ``-``; a key must start with a letter. A pipeline job
name such as ``Deploy_and_Test-20261125074417`` is not always a valid value, so the reference
pipeline (which labels the endpoint) and the cleanup exit task (which finds it by that label) both
call :func:`sanitize_label_value` on the job name: the same input always gives the same label.
"""

import hashlib
import re

#: The label the reference pipeline puts on every endpoint (and model) a run creates; its value is
#: ``sanitize_label_value(<the run's job name>)``. The cleanup and the sweeper discover by it.
RUN_LABEL_KEY = "vertex-loadtest-run"

MAX_LABEL_LENGTH = 63
_INVALID = re.compile(r"[^a-z0-9_-]+")
_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")


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
    if len(value) > MAX_LABEL_LENGTH:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
        value = f"{value[: MAX_LABEL_LENGTH - 9].rstrip('-')}-{digest}"
    return value


def is_valid_label_key(key: str) -> bool:
    """True when ``key`` is a valid Google Cloud label key."""
    return bool(_KEY.match(key))


def is_valid_label_value(value: str) -> bool:
    """True when ``value`` is a valid Google Cloud label value (empty is allowed)."""
    return bool(_VALUE.match(value))


def run_labels(run_name: str, key: str = RUN_LABEL_KEY) -> dict[str, str]:
    """The labels a run puts on what it creates: ``{key: sanitize_label_value(run_name)}``."""
    return {key: sanitize_label_value(run_name)}
