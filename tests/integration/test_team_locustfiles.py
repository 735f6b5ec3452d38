"""Locustfiles as teams bring them, through the CLI as a user runs it: the article-style file runs
unchanged (its VERTEX_AI_ENDPOINT_HOST is a dedicated endpoint's own DNS name when it has one), a file
that raises while being imported is bad input naming the file and the line, and a stop keeps the
reports whatever signal dispositions the command inherited."""

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.loopback_http import loopback_server
from vertex_loadtest.locust_load_test import target
from vertex_loadtest.locust_load_test.runner import LoadTest, run_load_test
from vertex_loadtest.rehearsal.prediction_server import Behaviour, PredictionServer
from vertex_loadtest.stats import load_stats
from vertex_loadtest.vertex_clients import API_ENDPOINT_ENV

pytestmark = pytest.mark.slow
ARTICLE_LOCUSTFILE = Path(__file__).parent.parent / "data" / "article_locustfile.py"


def load_test(*args: str, env: dict[str, str] | None = None, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "vertex_loadtest.cli", "load-test", *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **popen,
    )


def test_article_style_locustfile_runs_unchanged(tmp_path, prediction_server):
    process = load_test(
        "--host",
        f"{prediction_server.url}/v1/projects/p/locations/l/endpoints/1:predict",
        "--locustfile",
        str(ARTICLE_LOCUSTFILE),
        "--users",
        "4",
        "--run-time",
        "3s",
        "--processes",
        "2",  # forked Locust workers must see the variables too
        "--output-dir",
        str(tmp_path),
        env={"BASELINE_NO_AUTH": "1"},
    )
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    served = prediction_server.counters.by_outcome.get("ok", 0)
    stats = load_stats(tmp_path)
    assert stats["totals"]["successes"] == served > 50
    # The path the file read from VERTEX_AI_ENDPOINT_PATH is the :predict path of the target.
    assert list(stats["requests"]) == ["POST /v1/projects/p/locations/l/endpoints/1:predict"]


BROKEN = {
    "key_error": (
        "from os import environ as env\nfrom locust import HttpUser\n\nTOKEN = env['TEAM_TOKEN']\n",
        4,
        "KeyError: 'TEAM_TOKEN'",
    ),
    "name_error": (
        "from locust import HttpUser\n\n\nclass U(HttpUser):\n    wait = beteen(1, 2)\n",
        5,
        "NameError",
    ),
    "missing_package": (
        "from locust import HttpUser\nfrom google.cloud import spanner\n",
        2,
        "the package google-cloud-spanner",
    ),
    "bad_import_name": ("from locust import HttpUserr\n", 1, "ImportError: cannot import name 'HttpUserr'"),
    "module_code": (
        "import json\nfrom locust import HttpUser\n\nPROMPTS = json.loads('[1, 2,')\n",
        4,
        "JSONDecodeError",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_locustfile_that_raises_at_import_is_bad_input(tmp_path, prediction_server, case):
    source, line, raised = BROKEN[case]
    locustfile = tmp_path / "team_perf.py"
    locustfile.write_text(source)
    process = load_test(
        "--host",
        prediction_server.url,
        "--locustfile",
        str(locustfile),
        "--run-time",
        "2s",
        "--processes",
        "1",
        "--output-dir",
        str(tmp_path / "out"),
    )
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 2, output
    error = output.strip().splitlines()[-1]
    assert error.startswith("vertex-loadtest load-test: error: locustfile ")
    assert f"{locustfile} line {line}" in error and raised in error
    if case == "missing_package":
        assert "FROM ours" in error and "images.md" in error


def test_stop_keeps_the_reports_when_sigint_was_ignored_at_start(tmp_path, prediction_server):
    """``vertex-loadtest load-test ... &`` in a script, then ``kill $!``: the job starts ignoring SIGINT."""
    process = load_test(
        "--host",
        prediction_server.url,
        "--run-time",
        "60s",
        "--users",
        "2",
        "--processes",
        "2",
        "--output-dir",
        str(tmp_path),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert process.stdout is not None
    for line in process.stdout:  # wait until load is flowing
        if "progress:" in line and "requests=0 " not in line:
            break
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=15)
    assert process.returncode == 1
    assert "Traceback" not in output and "killing it" not in output
    stats = load_stats(tmp_path)
    assert stats["run"]["complete"] is False and stats["run"]["stop_reason"] == "interrupted"
    assert "<html" in (tmp_path / "report.html").read_text().lower()


DEAF_LOCUSTFILE = """
import signal

from locust import task

from vertex_loadtest.locust_load_test.vertex_user import VertexEndpointUser

signal.signal(signal.SIGINT, signal.SIG_IGN)  # Locust will not stop on our SIGINT


class DeafUser(VertexEndpointUser):
    @task
    def send(self):
        self.predict_next()
"""


def test_a_locust_killed_anyway_leaves_incomplete_stats_and_one_error_line(tmp_path, prediction_server):
    locustfile = tmp_path / "deaf.py"
    locustfile.write_text(DEAF_LOCUSTFILE)
    process = load_test(
        "--host",
        prediction_server.url,
        "--locustfile",
        str(locustfile),
        "--run-time",
        "60s",
        "--users",
        "2",
        "--processes",
        "1",
        "--output-dir",
        str(tmp_path / "out"),
    )
    assert process.stdout is not None
    for line in process.stdout:  # the first progress line comes with the first snapshot of the stats
        if "progress:" in line and "requests=0 " not in line:
            break
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 1
    assert "Traceback" not in output
    last = output.strip().splitlines()[-1]
    assert last.startswith("vertex-loadtest load-test: error: Locust was killed after ignoring the interrupt")
    assert "marked incomplete" in last
    stats = load_stats(tmp_path / "out")
    assert stats["run"]["complete"] is False and stats["run"]["stop_reason"] == "interrupted"
    assert stats["totals"]["requests"] > 0
    assert "killed" in (tmp_path / "out" / "report.html").read_text()


def test_report_names_the_team_locustfile_and_summary_rounds(tmp_path, prediction_server):
    process = load_test(
        "--host",
        prediction_server.url,
        "--locustfile",
        str(ARTICLE_LOCUSTFILE),
        "--users",
        "2",
        "--run-time",
        "2s",
        "--processes",
        "1",
        "--output-dir",
        str(tmp_path),
        env={"BASELINE_NO_AUTH": "1"},
    )
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    report = (tmp_path / "report.html").read_text()
    assert f'"locustfile": "{ARTICLE_LOCUSTFILE}"' in report and "plugin.py" not in report
    summary = next(line for line in output.splitlines() if line.startswith("latency of successful"))
    shown = [float(value) for value in re.findall(r"([\d.]+) ms", summary)]
    assert len(shown) == 5 and all(value == float(f"{value:.3g}") for value in shown), summary


def test_a_run_refused_401_everywhere_says_the_token_is_missing(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("BASELINE_NO_AUTH", "1")  # the article's file, run without its token step
    with PredictionServer(Behaviour(authorize=lambda header: header is not None)) as server:
        outcome = run_load_test(
            LoadTest(
                host=server.url, locustfile=str(ARTICLE_LOCUSTFILE), users=2, run_time="2s", processes=1
            ),
            tmp_path,
        )
        refused = server.counters.by_outcome.get("unauthorized", 0)
    totals = outcome.stats["totals"]
    assert totals["requests"] == totals["errors"]["auth"] == refused > 0
    assert "the token is missing or expired" in capfd.readouterr().out


ENDPOINT = "projects/p/locations/us-central1/endpoints/42"
DEDICATED_DNS = "42.us-central1-123456.prediction.vertexai.goog"


@pytest.mark.parametrize(
    ("status", "answer", "host"),
    [
        (200, {"name": ENDPOINT, "dedicatedEndpointDns": DEDICATED_DNS}, f"https://{DEDICATED_DNS}"),
        (200, {"name": ENDPOINT}, None),  # a shared endpoint: the regional API host
        (404, {"error": {"code": 404}}, None),  # unreadable: the regional host, with a warning
    ],
)
def test_a_dedicated_endpoint_takes_its_load_at_its_own_dns_name(monkeypatch, status, answer, host):
    paths = []

    def respond(request, _body):
        paths.append(request.path)
        return status, json.dumps(answer).encode()

    with loopback_server(respond) as api:
        monkeypatch.setenv(API_ENDPOINT_ENV, api)
        resolved = target.with_dedicated_dns(target.resolve(endpoint=ENDPOINT))
    assert paths == [f"/v1/{ENDPOINT}"]
    assert resolved.environment() == {
        "VERTEX_AI_ENDPOINT_HOST": host or api,
        "VERTEX_AI_ENDPOINT_PATH": f"/v1/{ENDPOINT}:predict",
    }
