"""Pure logic of the endpoint cleanup: label sanitizing, undeploy order and splits, sweep rule, durations."""

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vertex_loadtest.durations import format_seconds, parse_duration
from vertex_loadtest.endpoint_cleanup.config import CleanupConfig, expand_endpoint_name, resolve_config
from vertex_loadtest.endpoint_cleanup.plan import (
    endpoint_key,
    is_owned,
    label_filter,
    redistribute,
    split_without,
    sweep_verdict,
    undeploy_plan,
)
from vertex_loadtest.endpoint_cleanup.report import CleanupReport, EndpointResult, render_markdown
from vertex_loadtest.errors import BadInput
from vertex_loadtest.labels import is_valid_label_value, label_problem, run_labels, sanitize_label_value
from vertex_loadtest.rehearsal.vertex_emulator import ApiError, validate_split


# ------------------------------------------------------------------------------------------ labels
@pytest.mark.parametrize(
    ("job_name", "label"),
    [
        ("deploy-and-test-20261125074417", "deploy-and-test-20261125074417"),
        ("Deploy_And_Test 2026/11/25 07:44", "deploy_and_test-2026-11-25-07-44"),
        ("--weird--", "weird"),
        ("", ""),
    ],
)
def test_sanitize_examples(job_name: str, label: str) -> None:
    assert sanitize_label_value(job_name) == label


@given(st.text(max_size=300))
def test_sanitize_always_valid_and_deterministic(text: str) -> None:
    value = sanitize_label_value(text)
    assert is_valid_label_value(value)
    assert value == sanitize_label_value(text)


def test_long_names_sharing_a_prefix_stay_distinct() -> None:
    a, b = "p" * 80 + "-run-1", "p" * 80 + "-run-2"
    assert sanitize_label_value(a) != sanitize_label_value(b)
    assert len(sanitize_label_value(a)) == 63
    assert run_labels(a) == {"vertex-loadtest-run": sanitize_label_value(a)}


# -------------------------------------------------------------------------------- undeploy planning
def simulate(deployed: list[str], traffic: dict[str, int]) -> list[str]:
    """Applies a plan under the emulator's (Vertex's) rules; returns the undeploy order."""
    current_ids, current = list(deployed), dict(traffic)
    order = []
    for deployed_id, split in undeploy_plan(deployed, traffic):
        remaining = [i for i in current_ids if i != deployed_id]
        if split is None:
            assert not remaining or current.get(deployed_id, 0) == 0, "a model with traffic needs a split"
            current.pop(deployed_id, None)
        else:
            validate_split(split, remaining)  # raises ApiError like the emulator would
            current = dict(split)
        current_ids = remaining
        order.append(deployed_id)
    assert not current_ids
    return order


def test_models_without_traffic_go_first() -> None:
    assert simulate(["a", "b", "c", "d"], {"a": 70, "c": 30}) == ["b", "d", "c", "a"]


def test_split_names_every_remaining_model_and_sums_to_100() -> None:
    plan = undeploy_plan(["a", "b", "c"], {"a": 50, "b": 30, "c": 20})
    assert plan == [("c", {"a": 62, "b": 38}), ("b", {"a": 100}), ("a", None)]


def test_single_model_needs_no_split() -> None:
    assert undeploy_plan(["a"], {"a": 100}) == [("a", None)]
    assert undeploy_plan([], {}) == []


@given(st.lists(st.integers(min_value=0, max_value=100), min_size=1, max_size=8))
def test_any_endpoint_state_gets_a_plan_vertex_accepts(weights: list[int]) -> None:
    ids = [f"m{i}" for i in range(len(weights))]
    traffic = redistribute(dict(zip(ids, weights, strict=True))) if sum(weights) else {}
    traffic = {k: v for k, v in traffic.items() if v}  # models with no entry at all, like Vertex allows
    try:
        order = simulate(ids, traffic)
    except ApiError as error:  # pragma: no cover - shows the failing state
        pytest.fail(f"{error.status}: {error.message} for {traffic}")
    assert sorted(order) == sorted(ids)


@given(st.dictionaries(st.text(min_size=1, max_size=3), st.integers(min_value=0, max_value=1000), min_size=1))
def test_redistribute_sums_to_100(weights: dict[str, int]) -> None:
    result = redistribute(weights)
    assert sum(result.values()) == 100 and set(result) == set(weights)
    assert all(v >= 0 for v in result.values())


# ---------------------------------------------------------------------------------------- ownership
def test_ownership_needs_every_label() -> None:
    assert is_owned({"vertex-loadtest-run": "r", "team": "x"}, {"vertex-loadtest-run": "r"})
    assert not is_owned({"vertex-loadtest-run": "other"}, {"vertex-loadtest-run": "r"})
    assert not is_owned({}, {"vertex-loadtest-run": "r"})
    assert not is_owned({"vertex-loadtest-run": "r"}, {})  # no ownership labels own nothing


def test_label_filter_uses_one_documented_form() -> None:
    # No AND (undocumented for endpoints.list): one term; every label is checked client-side anyway.
    assert label_filter({"b": "2", "a": "1"}) == 'labels.a="1"'
    assert label_filter({}, ["vertex-loadtest-run"]) == "labels.vertex-loadtest-run:*"
    assert label_filter({}) == ""


def test_endpoint_identity_ignores_project_id_versus_number() -> None:
    by_id = "projects/my-project/locations/us-central1/endpoints/123"
    by_number = "projects/123456789/locations/us-central1/endpoints/123"
    assert endpoint_key(by_id) == endpoint_key(by_number) == ("us-central1", "123")
    assert endpoint_key(by_id) != endpoint_key("projects/p/locations/europe-west4/endpoints/123")


@pytest.mark.parametrize(
    ("traffic", "leaving", "split"),
    [
        ({"a": 100}, "a", {}),  # the last model: an empty split
        ({"a": 50, "b": 30, "c": 20}, "a", {"b": 60, "c": 40}),
        ({"a": 100}, "a", {}),
        ({"a": 100, "b": 0}, "a", {"b": 100}),  # a model without traffic takes it all
    ],
)
def test_split_without_moves_every_request_off(
    traffic: dict[str, int], leaving: str, split: dict[str, int]
) -> None:
    deployed = sorted(set(traffic) | set(split))
    assert split_without(deployed, traffic, leaving) == split


# ------------------------------------------------------------------------------------------ labels
@pytest.mark.parametrize(
    "labels",
    [
        {"équipe": "données"},  # international lowercase letters
        {"機械": "学習"},  # caseless letters (Lo)
        {"k" * 64: "v" * 64},  # Vertex AI's schema: 64 code points
        {f"k{i}": "" for i in range(64)},
        {"a_b-c1": "0_x-y"},
    ],
)
def test_labels_the_service_accepts_are_accepted(labels: dict[str, str]) -> None:
    assert label_problem(labels) == ""
    config = resolve_config(CleanupConfig(project="p", location="l", labels=labels))
    assert config.ownership_labels() == labels


@pytest.mark.parametrize(
    "labels",
    [
        {"Team": "x"},  # uppercase
        {"1team": "x"},  # a key starts with a letter
        {"_team": "x"},
        {"": "x"},
        {"k" * 65: "v"},
        {"k": "v" * 65},
        {"team": "Ml"},
        {"team": "a b"},
        {"team": "a.b"},
        {f"k{i}": "" for i in range(65)},
    ],
)
def test_labels_the_service_refuses_are_bad_input(labels: dict[str, str]) -> None:
    assert label_problem(labels)
    with pytest.raises(BadInput, match="label"):
        resolve_config(CleanupConfig(project="p", location="l", labels=labels))


def test_endpoint_names() -> None:
    assert expand_endpoint_name("123", "p", "l") == "projects/p/locations/l/endpoints/123"
    full = "projects/p/locations/l/endpoints/9"
    assert expand_endpoint_name(full, "x", "y") == full
    with pytest.raises(BadInput):
        expand_endpoint_name("my-endpoint", "p", "l")


def test_project_location_and_run_from_the_final_status() -> None:
    config = resolve_config(
        CleanupConfig(
            project="",
            location="",
            run_name="",
            pipeline_job="projects/42/locations/europe-west4/pipelineJobs/job-7",
        )
    )
    assert (config.project, config.location, config.run_name) == ("42", "europe-west4", "job-7")
    assert config.ownership_labels() == {"vertex-loadtest-run": "job-7"}


def test_missing_project_is_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("VERTEX_LOADTEST_PROJECT", "CLOUD_ML_PROJECT_ID", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(BadInput, match="project"):
        resolve_config(
            CleanupConfig(project="{{$.pipeline_google_cloud_project_id}}", location="l", run_name="r")
        )


# -------------------------------------------------------------------------------------------- sweep
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
SIX_HOURS = parse_duration("6h", "--older-than")


def test_older_than_durations() -> None:
    assert SIX_HOURS == 21600
    assert parse_duration("1h30m", "--older-than") == 5400
    with pytest.raises(BadInput, match="--older-than"):
        parse_duration("6 hours", "--older-than")


@pytest.mark.parametrize(
    ("labels", "age_hours", "state", "swept"),
    [
        ({"vertex-loadtest-run": "r1"}, 7, None, True),
        ({"vertex-loadtest-run": "r1"}, 7, "PIPELINE_STATE_FAILED", True),
        ({"vertex-loadtest-run": "r1"}, 7, "PIPELINE_STATE_RUNNING", False),
        ({"vertex-loadtest-run": "r1"}, 7, "PIPELINE_STATE_PAUSED", False),
        ({"vertex-loadtest-run": "r1"}, 5, None, False),
        ({"vertex-loadtest-run": "current"}, 7, None, False),
        ({"team": "x"}, 7, None, False),
    ],
)
def test_sweep_rule(labels: dict[str, str], age_hours: float, state: str | None, swept: bool) -> None:
    created = NOW - dt.timedelta(hours=age_hours)
    verdict, why = sweep_verdict(labels, created, NOW, SIX_HOURS, state, current_run_label="current")
    assert verdict is swept and why


def test_format_seconds() -> None:
    assert [format_seconds(s) for s in (3.21, 42, 185, 21720)] == ["3.2s", "42s", "3m05s", "6h02m"]


def test_markdown_report_stays_small() -> None:
    report = CleanupReport("p", "l", "run", "FAILED", "cleanup", False, {"k": "v"}, "", NOW.isoformat())
    report.endpoints = [
        EndpointResult(name=f"projects/p/locations/l/endpoints/{i}", action="failed", errors=["x" * 500] * 3)
        for i in range(500)
    ]
    text = render_markdown(report)
    assert len(text) < 50_000 and "FAILED" in text
