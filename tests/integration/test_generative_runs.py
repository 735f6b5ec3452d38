"""Real Locust runs of the streaming chat user: against the rehearsal's generative server with two
processes (merged histograms equal the raw per-request samples), and against a loopback server that
breaks its streams in every way a real one does."""

import json
import math
import re
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import pytest

from vertex_loadtest.latency_gate.verdict import GateStatus, judge
from vertex_loadtest.locust_load_test.runner import LoadTest, run_load_test
from vertex_loadtest.rehearsal.llm_server import GenerativeServer
from vertex_loadtest.stats import load_stats

pytestmark = pytest.mark.slow
DATA = Path(__file__).parent.parent / "data"
CHAT = "POST chat"


def nearest_rank(samples: list[float], quantile: float) -> float:
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(quantile * len(ordered) - 1e-9)) - 1]


def assert_matches(summary: dict, samples: list[float]) -> None:
    """Percentiles within the 0.2% bucket of the exact nearest rank, never above it; exact extremes."""
    for key, quantile in {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}.items():
        truth = nearest_rank(samples, quantile)
        assert summary[key] == pytest.approx(truth, rel=0.002, abs=1e-9), key
        assert summary[key] <= truth + 1e-9, key
    assert summary["min"] == pytest.approx(min(samples))
    assert summary["max"] == pytest.approx(max(samples))
    assert summary["mean"] == pytest.approx(sum(samples) / len(samples), abs=0.001)


def test_two_processes_merge_to_the_raw_generation_samples(tmp_path, monkeypatch):
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    monkeypatch.setenv("RAW_SAMPLES_DIR", str(raw_dir))
    with GenerativeServer() as server:
        outcome = run_load_test(
            LoadTest(
                host=server.url,
                locustfile=str(DATA / "recording_chat_locustfile.py"),
                api="chat",
                input_tokens=40,
                output_tokens=12,
                token_spread=0.5,
                goodput="ttft<40ms,tpot<15ms",
                users=16,
                spawn_rate=50,
                run_time="5s",
                processes=2,
            ),
            tmp_path / "out",
        )
    records = [json.loads(line) for path in raw_dir.iterdir() for line in path.read_text().splitlines()]
    stats = load_stats(outcome.stats_file)
    entry = stats["requests"][CHAT]
    generation = entry["generation"]
    assert stats["run"]["complete"] is True and stats["target"]["api"] == "chat"
    assert entry["successes"] == len(records) > 50
    assert_matches(entry["latency_ms"], [r["latency"] for r in records])  # E2E is latency_ms
    assert_matches(generation["ttft_ms"], [r["ttft"] for r in records])
    assert_matches(generation["tpot_ms"], [r["tpot"] for r in records if r["output_tokens"] > 1])
    assert_matches(generation["itl_ms"], [gap for r in records for gap in r["itl"]])
    assert generation["output_tokens"]["sum"] == sum(r["output_tokens"] for r in records)
    assert generation["input_tokens"]["sum"] == sum(r["input_tokens"] for r in records)
    assert generation["token_count_source"] == "usage"
    assert generation["output_tokens_per_s"] == pytest.approx(
        generation["output_tokens"]["sum"] / stats["run"]["duration_s"], rel=0.001
    )
    good = sum(r["ttft"] < 40 and (r["tpot"] < 15) for r in records)
    assert generation["goodput"]["requests"] == good
    assert stats["totals"]["generation"]["output_tokens"] == generation["output_tokens"]
    report = outcome.report.read_text(encoding="utf-8")
    assert "Time to first token" in report and "Output tokens per second" in report
    locust_rows = json.loads(re.search(r'"requests_statistics":\s*(\[.*?\])', report).group(1))
    assert [row["num_requests"] for row in locust_rows if row["name"] == "chat"] == [entry["requests"]]
    verdict = judge(stats, ["ttft_p95 < 10s", "output_tps > 0"], min_requests=1)
    assert verdict.status == GateStatus.PASSED
    assert judge(stats, ["ttft_p95 < 0.001ms"], min_requests=1).status == GateStatus.FAILED


class _BreakingStreams(BaseHTTPRequestHandler):
    """Answers chat completions by the prompt: ``ok``, ``cut``, ``empty``, ``error`` or ``busy``."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][0]["content"]
        if prompt == "busy":
            self.send_response(429)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")  # the body runs until the connection closes
        self.end_headers()
        events = {
            "ok": [_chunk("a"), ": keep-alive", _chunk("b c"), _chunk("d", "stop"), _usage(3), "[DONE]"],
            "cut": [_chunk("a"), _chunk("b")],
            "empty": [_chunk(""), _chunk(None, "stop"), "[DONE]"],
            "error": [_chunk("a"), json.dumps({"error": {"message": "engine died", "code": 500}})],
        }[prompt]
        for event in events:
            line = event if event.startswith(":") else f"data: {event}"
            self.wfile.write(f"{line}\r\n\r\n".encode())
            self.wfile.flush()
            time.sleep(0.002)
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


def _chunk(content: str | None, finish: str | None = None) -> str:
    delta = {} if content is None else {"content": content}
    return json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def _usage(tokens: int) -> str:
    return json.dumps({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": tokens}})


def test_broken_streams_are_failures_of_their_kind(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        "".join(json.dumps({"prompt": p}) + "\n" for p in ("ok", "cut", "empty", "error", "busy"))
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BreakingStreams)
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        outcome = run_load_test(
            LoadTest(
                host=f"http://127.0.0.1:{server.server_port}",
                api="chat",
                prompts=str(prompts),
                users=5,
                spawn_rate=50,
                run_time="3s",
                processes=1,
            ),
            tmp_path / "out",
        )
    finally:
        server.shutdown()
        server.server_close()
    stats = load_stats(outcome.stats_file)
    entry = stats["requests"][CHAT]
    errors = entry["errors"]
    assert min(errors["stream-broken"], errors["empty-stream"], errors["server"], errors["throttled"]) > 0
    assert entry["failures"] == sum(errors.values())
    assert entry["generation"]["output_tokens"]["sum"] == 3 * entry["successes"] > 0
    assert entry["generation"]["ttft_ms"]["min"] > 0


def test_abort_on_breach_judges_token_slos(tmp_path):
    with GenerativeServer() as server:
        outcome = run_load_test(
            LoadTest(
                host=server.url,
                api="stream-raw",
                input_tokens=20,
                output_tokens=8,
                users=4,
                spawn_rate=20,
                run_time="60s",
                processes=1,
                abort_on_breach=("ttft_p50 < 0.001ms",),
                abort_grace="1s",
            ),
            tmp_path / "out",
        )
    stats = outcome.stats
    assert stats["run"]["stop_reason"] == "aborted-on-breach"
    assert stats["run"]["duration_s"] < 30
    assert stats["totals"]["generation"]["output_tokens"]["sum"] > 0
