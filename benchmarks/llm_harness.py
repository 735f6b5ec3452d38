"""What the LLM benchmarks share: the rehearsal's generative server in its own process (pinned to
its own core) logging its own truth, the tools that load it (ours through the CLI, AIPerf from its
own virtual environment), and the comparison of their numbers with that truth.

AIPerf (``aiperf`` on PyPI, ~1.2 GB with its dependencies) is installed on first use into
``AIPERF_VENV`` (default ``/work/aiperf-venv``; never the project's environment) and run with a tiny
local tokenizer and the server's own token counts, so it needs no network beyond the package index.
"""

import contextlib
import json
import math
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vertex_loadtest.ports import free_port

AIPERF_VENV = Path(os.environ.get("AIPERF_VENV", "/work/aiperf-venv"))
SERVER_CPU, GENERATOR_CPU = 1, 0
PROMPT_WORDS = ("the", "event", "loop", "runs", "each", "task", "until", "it", "awaits", "a", "future")


def nearest_rank(values: list[float], quantile: float) -> float:
    """The nearest-rank percentile (our histograms' semantics; docs/llm-metrics.md)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(quantile * len(ordered)) - 1)] if ordered else math.nan


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})


@dataclass
class ServerCosts:
    """The simulated accelerator: a decode step costs ``decode_base_ms + decode_per_seq_ms x batch``."""

    decode_base_ms: float = 15.0
    decode_per_seq_ms: float = 0.1
    prefill_per_token_ms: float = 0.01
    max_seqs: int = 1024


@contextlib.contextmanager
def generative_server(work: Path, costs: ServerCosts) -> Iterator[tuple[str, Path]]:
    """Runs the server on its own core; yields its URL and its truth log (JSON lines)."""
    port, truth = free_port(), work / f"truth-{time.monotonic_ns()}.jsonl"
    command = [
        sys.executable,
        "-m",
        "vertex_loadtest.rehearsal.llm_server",
        f"--port={port}",
        f"--truth-log={truth}",
        f"--max-seqs={costs.max_seqs}",
        f"--decode-base-ms={costs.decode_base_ms}",
        f"--decode-per-seq-ms={costs.decode_per_seq_ms}",
        f"--prefill-per-token-ms={costs.prefill_per_token_ms}",
        "--ignore-eos",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, preexec_fn=lambda: _pin(SERVER_CPU))
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health", timeout=1):
                break
            if process.poll() is not None:
                raise RuntimeError("the generative server exited at start-up")
            time.sleep(0.1)
        yield url, truth
    finally:
        process.terminate()
        process.wait(10)


def truth_records(truth: Path, since: float = 0.0) -> list[dict[str, Any]]:
    """The server's records of streamed requests that arrived after ``since`` (time.monotonic)."""
    records = [json.loads(line) for line in truth.read_text(encoding="utf-8").splitlines() if line]
    return [record for record in records if record["stream"] and record["arrival"] >= since]


def truth_numbers(records: list[dict[str, Any]]) -> dict[str, float]:
    """TTFT p50/p99 and TPOT p50 (ms), events and their rate, as the server itself saw them."""
    ttft = [record["ttft_ms"] for record in records]
    tpot = [
        (record["e2e_ms"] - record["ttft_ms"]) / (record["completion_tokens"] - 1)
        for record in records
        if record["completion_tokens"] > 1
    ]
    events = sum(len(record["token_ms"]) for record in records)
    span = max(r["arrival"] + r["e2e_ms"] / 1000 for r in records) - min(r["arrival"] for r in records)
    return {
        "requests": len(records),
        "ttft_p50": nearest_rank(ttft, 0.5),
        "ttft_p99": nearest_rank(ttft, 0.99),
        "tpot_p50": nearest_rank(tpot, 0.5),
        "events_per_s": events / span if span > 0 else 0.0,
    }


def run_ours(url: str, work: Path, users: int, run_time_s: int, output_tokens: int) -> dict[str, Any]:
    """``vertex-loadtest load-test --api chat`` on one core, one Locust process; returns stats.json
    (its ``generator.loop_lag_ms`` is the Locust process's own loop lag)."""
    out = work / f"ours-{users}-{time.monotonic_ns()}"
    command = [
        str(Path(sys.executable).with_name("vertex-loadtest")),
        "load-test",
        f"--host={url}",
        "--api=chat",
        f"--users={users}",
        f"--spawn-rate={users}",
        f"--run-time={run_time_s}s",
        "--processes=1",
        f"--input-tokens={len(PROMPT_WORDS)}",
        f"--output-tokens={output_tokens}",
        f"--max-tokens={output_tokens}",
        f"--output-dir={out}",
    ]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, preexec_fn=lambda: _pin(GENERATOR_CPU))
    stats: dict[str, Any] = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    return stats


def ours_numbers(stats: dict[str, Any]) -> dict[str, float]:
    """TTFT p50/p99, TPOT p50, content events/s and loop lag from our stats.json."""
    totals, generator = stats["totals"], stats.get("generator", {})
    generation = totals["generation"]
    return {
        "requests": totals["successes"],
        "ttft_p50": generation["ttft_ms"]["p50"],
        "ttft_p99": generation["ttft_ms"]["p99"],
        "tpot_p50": generation["tpot_ms"]["p50"],
        "events_per_s": generation["output_tokens_per_s"],
        "loop_lag_ms": (generator.get("loop_lag_ms") or {}).get("p99") or math.nan,
        "cpu_percent": generator.get("cpu_peak_percent", math.nan),
    }


def ensure_aiperf() -> Path:
    """AIPerf's executable, installed into its own virtual environment on first use."""
    executable = AIPERF_VENV / "bin" / "aiperf"
    if not executable.exists():
        print(f"installing aiperf into {AIPERF_VENV} (~1.2 GB, a few minutes; once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(AIPERF_VENV)], check=True)
        pip = [str(AIPERF_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "aiperf"], check=True)
    return executable


def aiperf_tokenizer(work: Path) -> Path:
    """A tiny word-level tokenizer saved locally (AIPerf's default fetches one from the network)."""
    path = work / "tokenizer"
    if not (path / "tokenizer.json").exists():
        script = f"""
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast
tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
tok.pre_tokenizer = pre_tokenizers.Whitespace()
words = [{" ".join(PROMPT_WORDS)!r} * 50]
tok.train_from_iterator(words, trainers.WordLevelTrainer(special_tokens=["[UNK]", "[EOS]"]))
fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", eos_token="[EOS]")
fast.save_pretrained({str(path)!r})
"""
        subprocess.run([str(AIPERF_VENV / "bin" / "python"), "-c", script], check=True)
    return path


def run_aiperf(url: str, work: Path, users: int, run_time_s: int, output_tokens: int) -> dict[str, float]:
    """AIPerf against the same server, pinned to the generator's core; its TTFT, ITL and rates."""
    aiperf, out = ensure_aiperf(), work / f"aiperf-{users}-{time.monotonic_ns()}"
    command = [
        str(aiperf),
        "profile",
        "--model=rehearsal-trigram",
        f"--url={url}",
        "--endpoint-type=chat",
        "--streaming",
        f"--concurrency={users}",
        f"--benchmark-duration={run_time_s}",
        f"--tokenizer={aiperf_tokenizer(work)}",
        "--use-server-token-count",
        f"--synthetic-input-tokens-mean={len(PROMPT_WORDS)}",
        f"--output-tokens-mean={output_tokens}",
        "--output-tokens-stddev=0",
        f"--artifact-dir={out}",
        "--ui-type=none",
    ]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, preexec_fn=lambda: _pin(GENERATOR_CPU))
    found = sorted(out.rglob("profile_export_aiperf.json")) or sorted(out.rglob("*aiperf*.json"))
    metrics = json.loads(found[0].read_text(encoding="utf-8"))
    metrics = metrics.get("records", metrics)

    def stat(name: str, key: str) -> float:
        value = metrics.get(name, {})
        return float(value.get(key, math.nan)) if isinstance(value, dict) else math.nan

    return {
        "requests": stat("request_count", "avg"),
        "ttft_p50": stat("time_to_first_token", "p50"),
        "ttft_p99": stat("time_to_first_token", "p99"),
        "tpot_p50": stat("inter_token_latency", "p50"),
        "events_per_s": stat("output_token_throughput", "avg"),
        "loop_lag_ms": math.nan,
        "cpu_percent": math.nan,
    }


def error(measured: float, truth: float) -> str:
    """``+0.21 ms (+0.4%)``: a tool's number minus the server's truth."""
    if math.isnan(measured) or math.isnan(truth):
        return "n/a"
    delta = measured - truth
    return f"{delta:+.2f} ms ({100 * delta / truth:+.1f}%)" if truth else f"{delta:+.2f} ms"


def within_goal(measured: float, truth: float) -> bool:
    """The issue's goal: within 1%, or 0.5 ms below 50 ms."""
    allowed = 0.5 if truth < 50 else 0.01 * truth
    return abs(measured - truth) <= allowed
