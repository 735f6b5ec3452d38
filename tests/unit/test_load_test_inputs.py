"""Pure input handling of the load test: targets, payloads, run times, failure kinds, recorder merges."""

import pytest

from vertex_loadtest.durations import parse_duration
from vertex_loadtest.errors import BadInput
from vertex_loadtest.locust_load_test import payloads, target
from vertex_loadtest.locust_load_test.recorder import Recorder, classify
from vertex_loadtest.vertex_clients import API_ENDPOINT_ENV


def test_endpoint_resource_name_gives_regional_host_and_predict_path(monkeypatch):
    monkeypatch.delenv(API_ENDPOINT_ENV, raising=False)
    resolved = target.resolve(endpoint="projects/p1/locations/europe-west4/endpoints/123")
    assert resolved.host == "https://europe-west4-aiplatform.googleapis.com"
    assert resolved.predict_path == "/v1/projects/p1/locations/europe-west4/endpoints/123:predict"
    assert resolved.anonymous is False


def test_api_endpoint_override_points_at_the_emulator(monkeypatch):
    monkeypatch.setenv(API_ENDPOINT_ENV, "http://127.0.0.1:9999")
    resolved = target.resolve(endpoint="projects/p/locations/us-central1/endpoints/7")
    assert resolved.host == "http://127.0.0.1:9999"
    assert resolved.anonymous is True


@pytest.mark.parametrize(
    ("host", "expected_host", "path", "anonymous"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080", "/predict", True),
        ("http://localhost:8080/v1/models/m:predict", "http://localhost:8080", "/v1/models/m:predict", True),
        ("https://model.example.com", "https://model.example.com", "/predict", False),
    ],
)
def test_plain_hosts(host, expected_host, path, anonymous):
    resolved = target.resolve(host=host)
    assert (resolved.host, resolved.predict_path, resolved.anonymous) == (expected_host, path, anonymous)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one target"),
        ({"host": "http://a", "endpoint": "projects/p/locations/l/endpoints/e"}, "exactly one target"),
        ({"host": "127.0.0.1:8080"}, "is not an http(s) URL"),
        ({"endpoint": "endpoints/123"}, "is not a resource name"),
        ({"host": "http://a", "auth": "token"}, "auth 'token' is not one of"),
    ],
)
def test_bad_targets(kwargs, message):
    with pytest.raises(BadInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        target.resolve(**kwargs)


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("90", 90)]
)
def test_run_times(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5 minutes", "1d", "-5s", "0"])
def test_bad_run_times(text):
    with pytest.raises(BadInput, match="run time"):
        parse_duration(text)


def test_jsonl_line_numbers_in_errors(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"text": "ok"}\n\n{broken\n')
    with pytest.raises(BadInput, match="line 3 is not JSON"):
        payloads.load_jsonl(path, "gs://b/p.jsonl")


def test_instances_must_be_a_list():
    with pytest.raises(BadInput, match='"instances" must be a list'):
        payloads.parse_inline('{"instances": {"text": "x"}}')


@pytest.mark.parametrize(
    ("status", "exception", "kind"),
    [
        (401, "HTTP 401", "auth"),
        (403, "HTTP 403", "auth"),
        (429, "HTTP 429", "throttled"),
        (503, "HTTP 503", "server"),
        (404, "HTTP 404", "client"),
        (0, ConnectionRefusedError(111, "Connection refused"), "connection"),
        (0, TimeoutError("timed out"), "timeout"),
        (200, type("MalformedResponse", (Exception,), {})("bad body"), "malformed"),
        (200, "custom check failed", "other"),
    ],
)
def test_failure_kinds(status, exception, kind):
    assert classify(status, exception) == kind


def test_worker_snapshots_merge_into_the_master_view():
    worker_a, worker_b, master = Recorder(), Recorder(), Recorder()
    worker_a.record("POST :predict", 10.0, None)
    worker_a.record("POST :predict", 2.0, "throttled")
    worker_b.record("POST :predict", 30.0, None)
    master.merge(worker_a.take())
    master.merge(worker_b.take())
    entry = master.entries["POST :predict"]
    assert (entry.success.count, entry.failure.count) == (2, 1)
    assert (entry.success.min_ms, entry.success.max_ms) == (10.0, 30.0)
    assert entry.errors == {"throttled": 1}
    assert worker_a.take() == {}, "a worker reports each request once"
