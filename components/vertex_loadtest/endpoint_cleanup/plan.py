"""The cleanup's pure decisions: undeploy order and traffic splits, ownership, list filters, the sweep rule.

No API calls here: every function maps values to values, so the rules are tested on their own.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping, Sequence

from vertex_loadtest.durations import format_seconds
from vertex_loadtest.labels import RUN_LABEL_KEY

RUNNING_PIPELINE_STATES = frozenset(
    {
        "PIPELINE_STATE_QUEUED",
        "PIPELINE_STATE_PENDING",
        "PIPELINE_STATE_RUNNING",
        "PIPELINE_STATE_CANCELLING",
        "PIPELINE_STATE_PAUSED",
    }
)

#: One undeploy step: the deployed model id, and the traffic split to pass (None: no split needed).
UndeployStep = tuple[str, dict[str, int] | None]


def undeploy_plan(deployed_ids: Sequence[str], traffic_split: Mapping[str, int]) -> list[UndeployStep]:
    """The order to undeploy models in, with the traffic split to pass at each step.

    Models without traffic go first (in deployment order), then the others by increasing traffic.
    A step passes ``None`` when the model carries no traffic (nothing to move) or is the last one;
    otherwise a split naming every remaining model, summing to 100, traffic moved proportionally.

    Args:
        deployed_ids: ``Endpoint.deployed_models[].id`` in order.
        traffic_split: ``Endpoint.traffic_split`` (ids missing from it carry no traffic).

    Returns:
        ``[(deployed_model_id, traffic_split_or_None), ...]`` covering every deployed model.
    """
    position = {deployed_id: index for index, deployed_id in enumerate(deployed_ids)}
    current = {i: max(0, int(traffic_split.get(i, 0))) for i in deployed_ids}
    order = sorted(deployed_ids, key=lambda i: (current[i], position[i]))
    steps: list[UndeployStep] = []
    for index, deployed_id in enumerate(order):
        remaining = order[index + 1 :]
        if not remaining or current[deployed_id] == 0:
            steps.append((deployed_id, None))
            current.pop(deployed_id)
            continue
        current = redistribute({i: current[i] for i in remaining})
        steps.append((deployed_id, dict(current)))
    return steps


def redistribute(weights: Mapping[str, int]) -> dict[str, int]:
    """Scales ``weights`` to integers summing to exactly 100 (largest remainder; equal when all zero)."""
    if not weights:
        return {}
    total = sum(weights.values())
    keys = list(weights)
    raw = {k: (weights[k] * 100 / total if total else 100 / len(keys)) for k in keys}
    result = {k: int(raw[k]) for k in keys}
    short = 100 - sum(result.values())
    for k in sorted(keys, key=lambda k: (-(raw[k] - result[k]), keys.index(k)))[:short]:
        result[k] += 1
    return result


def split_without(
    deployed_ids: Sequence[str], traffic_split: Mapping[str, int], leaving: str
) -> dict[str, int]:
    """The traffic split that takes every request off ``leaving`` (empty when no other model remains).

    The other models keep their proportions (equal shares when none of them carried traffic).
    """
    others = [i for i in deployed_ids if i != leaving]
    return redistribute({i: max(0, int(traffic_split.get(i, 0))) for i in others})


def is_owned(labels: Mapping[str, str], ownership: Mapping[str, str]) -> bool:
    """True when ``labels`` carry every ownership label (an empty ownership owns nothing)."""
    return bool(ownership) and all(labels.get(k) == v for k, v in ownership.items())


def label_filter(labels: Mapping[str, str], exists: Iterable[str] = ()) -> str:
    """A server-side list filter in one documented form: ``labels.key="value"`` or ``labels.key:*``.

    One term only (``AND`` is not among the documented forms of endpoints.list and models.list): the
    first key of ``exists``, else the first of ``labels`` (sorted). The caller checks every label on
    the client side anyway, and confirms an empty answer with an unfiltered listing.

    Args:
        labels: Labels the resources carry with these values.
        exists: Label keys the resources carry with any value.

    Returns:
        The filter, or "" when there is nothing to filter on.
    """
    keys = list(exists)
    if keys:
        return f"labels.{keys[0]}:*"
    if labels:
        key = sorted(labels)[0]
        return f'labels.{key}="{labels[key]}"'
    return ""


def endpoint_key(name: str) -> tuple[str, str]:
    """``(location, endpoint id)``: one endpoint whether its name carries the project id or number."""
    parts = name.split("/")
    return parts[3], parts[5]


def sweep_verdict(
    labels: Mapping[str, str],
    created: _dt.datetime | None,
    now: _dt.datetime,
    older_than_seconds: float,
    pipeline_state: str | None,
    current_run_label: str = "",
    label_key: str = RUN_LABEL_KEY,
) -> tuple[bool, str]:
    """Whether the sweeper removes a resource, and why.

    Swept when it carries the run label (not the current run's), is older than the threshold, and
    its pipeline job is not running (a job that cannot be found counts as not running).

    Args:
        labels: The resource's labels.
        created: Its creation time (None: unknown, never swept).
        now: The time the cleanup started.
        older_than_seconds: The age threshold.
        pipeline_state: The state of the pipeline job named by the run label (None: not found).
        current_run_label: The current run's label value (never swept).
        label_key: The run label's key.

    Returns:
        ``(swept, reason)``.
    """
    run = labels.get(label_key)
    if run is None:
        return False, f"no {label_key} label"
    if current_run_label and run == current_run_label:
        return False, "belongs to the current run"
    if created is None:
        return False, "creation time unknown"
    age = (now - created).total_seconds()
    if age < older_than_seconds:
        return False, f"only {format_seconds(age)} old (threshold {format_seconds(older_than_seconds)})"
    if pipeline_state in RUNNING_PIPELINE_STATES:
        return False, f"its run is still {pipeline_state.removeprefix('PIPELINE_STATE_').lower()}"
    why = (
        f"run {pipeline_state.removeprefix('PIPELINE_STATE_').lower()}" if pipeline_state else "run not found"
    )
    return True, f"{format_seconds(age)} old, {why}"
