"""The load test's guarantees over its life: token refresh without leaks, SIGTERM, the hard deadline,
locustfiles from Cloud Storage (gcp-storage-emulator) and denied storage access."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.loopback_http import loopback_server
from vertex_loadtest.errors import BadInput
from vertex_loadtest.locust_load_test import locust_process, runner
from vertex_loadtest.locust_load_test.runner import LoadTest, run_load_test
from vertex_loadtest.rehearsal.prediction_server import Behaviour, PredictionServer
from vertex_loadtest.stats import load_stats

pytestmark = pytest.mark.slow
DATA = Path(__file__).parent.parent / "data"


class TokenServer:
    """An OAuth2 token endpoint on loopback issuing short-lived tokens, as Google's would."""

    def __init__(self, lifetime_s: int):
        self.lifetime_s = lifetime_s
        self.issued: list[tuple[str, float]] = []

    def respond(self, _request, _body) -> tuple[int, bytes]:
        token = f"secret-token-{len(self.issued)}-{os.urandom(4).hex()}"
        self.issued.append((token, time.time() + self.lifetime_s))
        return 200, json.dumps(
            {"access_token": token, "expires_in": self.lifetime_s, "token_type": "Bearer"}
        ).encode()

    def valid(self, header: str | None) -> bool:
        now = time.time()
        return any(header == f"Bearer {token}" and now < expiry for token, expiry in self.issued)


def service_account_key(token_uri: str) -> dict[str, str]:
    """A service-account key file whose token endpoint is ``token_uri`` (a fresh RSA key, no real account)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": "test-project",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "loadtest@test-project.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }


def test_tokens_refresh_before_expiry_and_never_leak(tmp_path, monkeypatch, capfd):
    tokens = TokenServer(lifetime_s=2)
    with loopback_server(tokens.respond) as token_url:
        credentials = tmp_path / "adc.json"
        credentials.write_text(json.dumps(service_account_key(f"{token_url}/token")))
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(credentials))
        with PredictionServer(Behaviour(latency="2ms", authorize=tokens.valid)) as server:
            outcome = run_load_test(
                LoadTest(host=server.url, auth="google", users=4, run_time="7s", processes=1),
                tmp_path / "out",
            )
            unauthorized = server.counters.by_outcome.get("unauthorized", 0)
    totals = outcome.stats["totals"]
    assert totals["requests"] > 100
    assert unauthorized == 0 and totals["errors"]["auth"] == 0
    assert len(tokens.issued) >= 3, "a 2 s token over a 7 s run must be refreshed"
    captured = capfd.readouterr()
    outputs = [captured.out, captured.err] + [path.read_text() for path in (tmp_path / "out").iterdir()]
    for token, _ in tokens.issued:
        assert not any(token in text for text in outputs), "a bearer token reached a log or report"


def test_sigterm_writes_reports_marked_incomplete_and_exits_nonzero(tmp_path, prediction_server):
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vertex_loadtest.cli",
            "load-test",
            "--host",
            prediction_server.url,
            "--run-time",
            "60s",
            "--users",
            "3",
            "--processes",
            "2",
            "--output-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:  # the context closes the pipe
        assert process.stdout is not None
        for line in process.stdout:  # wait until load is flowing
            if "progress:" in line and "requests=0 " not in line:
                break
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        process.stdout.read()
        returncode = process.wait(timeout=15)
    assert time.monotonic() - signalled < 10
    assert returncode != 0
    stats = load_stats(tmp_path)
    assert stats["run"]["complete"] is False and stats["run"]["stop_reason"] == "interrupted"
    assert stats["totals"]["requests"] > 0
    assert "<html" in (tmp_path / "report.html").read_text().lower()


SPINNING_USER = """
import signal
from locust import User, task
{prelude}

class Spinning(User):
    @task
    def spin(self):
        while True:  # never yields to gevent, so Locust's run-time and stop-timeout cannot stop it
            pass
"""


@pytest.fixture
def run_spinning(tmp_path, prediction_server, monkeypatch):
    """Runs a 2 s test of a user that never yields, with a short deadline; returns the outcome."""
    monkeypatch.setattr(runner, "DEADLINE_GRACE_S", 2.0)
    monkeypatch.setattr(locust_process, "INTERRUPT_GRACE_S", 2.0)

    def run(prelude: str):
        locustfile = tmp_path / "spinning.py"
        locustfile.write_text(SPINNING_USER.format(prelude=prelude))
        test = LoadTest(
            host=prediction_server.url,
            locustfile=str(locustfile),
            users=1,
            run_time="2s",
            processes=1,
            stop_timeout_s=1,
        )
        return run_load_test(test, tmp_path / "out")

    return run


def test_a_stuck_locust_is_interrupted_at_the_deadline(run_spinning):
    started = time.monotonic()
    outcome = run_spinning(prelude="")
    assert time.monotonic() - started < 2 + 1 + 2 + 2 + 5
    assert outcome.stats["run"]["complete"] is False
    assert outcome.stats["run"]["stop_reason"] == "deadline"


def test_a_locust_deaf_to_interrupts_is_killed(run_spinning):
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="without writing its statistics"):
        run_spinning(prelude="signal.signal(signal.SIGINT, signal.SIG_IGN)")
    assert time.monotonic() - started < 2 + 1 + 2 + 2 + 5


def test_locustfile_from_cloud_storage(tmp_path, gcs_emulator, prediction_server):
    from google.cloud import storage

    source = (DATA / "recording_locustfile.py").read_bytes()
    bucket = storage.Client().create_bucket("team-tests")
    bucket.blob("perf/locustfile.py").upload_from_string(source)
    os.environ["RAW_SAMPLES_DIR"] = str(tmp_path)
    try:
        outcome = run_load_test(
            LoadTest(
                host=prediction_server.url,
                locustfile="gs://team-tests/perf/locustfile.py",
                locustfile_sha256=hashlib.sha256(source).hexdigest(),
                users=2,
                run_time="2s",
                processes=1,
            ),
            tmp_path / "out",
        )
    finally:
        del os.environ["RAW_SAMPLES_DIR"]
    assert outcome.complete and outcome.stats["totals"]["successes"] > 0
    assert list(tmp_path.glob("samples-*.txt")), "the team's locustfile ran"
    with pytest.raises(BadInput, match=r"locustfile gs://team-tests/perf/missing\.py does not exist"):
        run_load_test(
            LoadTest(host=prediction_server.url, locustfile="gs://team-tests/perf/missing.py"),
            tmp_path / "missing",
        )


def test_denied_storage_access_names_the_uri_and_the_role(tmp_path, monkeypatch, prediction_server):
    denied = {
        "error": {
            "code": 403,
            "message": "caller does not have storage.objects.get access",
            "errors": [{"reason": "forbidden"}],
        }
    }
    with loopback_server(lambda _request, _body: (403, json.dumps(denied).encode())) as storage_url:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", storage_url)
        with pytest.raises(
            BadInput, match=r"access to locustfile gs://private/l.py was denied .*objectViewer"
        ):
            run_load_test(LoadTest(host=prediction_server.url, locustfile="gs://private/l.py"), tmp_path)


def test_cpu_sampler_tells_a_saturated_generator_from_an_idle_one():
    import psutil

    peaks = {}
    for name, code in (("busy", "while True: pass"), ("idle", "import time; time.sleep(60)")):
        process = subprocess.Popen([sys.executable, "-c", code])
        try:
            sampler = locust_process.CpuSampler(psutil.Process(process.pid))
            for _ in range(8):
                time.sleep(0.25)
                sampler.sample()
            peaks[name] = sampler.peak
        finally:
            process.kill()
            process.wait()
    assert peaks["busy"] >= runner.results.SATURATION_PERCENT > 20 > peaks["idle"]
