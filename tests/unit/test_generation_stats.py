"""Generation numbers from record to verdict: merging across processes, goodput, prompts, and the
gate's token SLOs (ttft_P, tpot_P, itl_P, output_tps, goodput) with scopes, units and baselines."""

import copy
import json

import pytest

from tests import gate_stats
from vertex_loadtest import histogram, slo
from vertex_loadtest.errors import BadInput
from vertex_loadtest.latency_gate import render
from vertex_loadtest.latency_gate.verdict import GateStatus, judge
from vertex_loadtest.locust_load_test import goodput, prompts, results
from vertex_loadtest.locust_load_test.generation_stats import GenerationRecorder, merge_all, summary
from vertex_loadtest.locust_load_test.streaming import EVENTS, USAGE, Generation

CHAT = "POST chat"


def generation(ttft: float, tokens: int, itl: float = 10.0, source: str = USAGE) -> Generation:
    gaps = [itl] * (tokens - 1)
    return Generation("x" * tokens, ttft, ttft + sum(gaps), gaps, tokens, 20, source)


def recorded(slos: str = "", count: int = 100) -> GenerationRecorder:
    recorder = GenerationRecorder(goodput.parse(slos))
    for index in range(count):
        recorder.record(CHAT, generation(ttft=100.0 + index, tokens=1 + index % 20))
    return recorder


def test_workers_snapshots_merge_to_the_single_process_numbers():
    whole = recorded("ttft<150ms")
    workers = [GenerationRecorder(goodput.parse("ttft<150ms")) for _ in range(3)]
    for index in range(100):
        workers[index % 3].record(CHAT, generation(ttft=100.0 + index, tokens=1 + index % 20))
    master = GenerationRecorder()
    for worker in workers:
        master.merge(json.loads(json.dumps(worker.take())))  # as sent over ZeroMQ
        assert worker.entries == {}
    assert summary(master.to_dict()["entries"][CHAT], 100, 10.0) == summary(
        whole.to_dict()["entries"][CHAT], 100, 10.0
    )


def test_summary_token_fields_and_rates():
    generated = summary(recorded("ttft<150ms").to_dict()["entries"][CHAT], requests=125, duration_s=10.0)
    assert generated is not None
    tokens = [1 + index % 20 for index in range(100)]
    assert generated["output_tokens"]["sum"] == sum(tokens)
    assert generated["output_tokens"]["mean"] == pytest.approx(sum(tokens) / 100)
    assert (generated["output_tokens"]["min"], generated["output_tokens"]["max"]) == (1, 20)
    assert generated["output_tokens"]["p50"] == sorted(tokens)[49]
    assert generated["input_tokens"]["sum"] == 2000
    assert generated["output_tokens_per_s"] == pytest.approx(sum(tokens) / 10.0)
    assert generated["token_count_source"] == USAGE
    assert generated["ttft_ms"]["p50"] == pytest.approx(149.0, rel=0.002)
    # 50 requests had TTFT < 150 ms; the 25 failures of the entry count against goodput.
    assert generated["goodput"] == {"slos": ["ttft<150ms"], "requests": 50, "per_s": 5.0, "fraction": 0.4}
    # TPOT only over requests with more than one token; with 10 ms gaps it is exactly 10 ms.
    assert generated["tpot_ms"]["p50"] == pytest.approx(10.0, rel=0.002)


def test_token_count_source_mixed_and_no_goodput_without_slos():
    recorder = GenerationRecorder()
    recorder.record(CHAT, generation(10, 3))
    recorder.record(CHAT, generation(10, 3, source=EVENTS))
    generated = summary(merge_all(recorder.to_dict()["entries"].values()), 2, 1.0)
    assert generated is not None
    assert (generated["token_count_source"], generated["goodput"]) == ("mixed", None)


@pytest.mark.parametrize(
    ("text", "values", "met"),
    [
        ("ttft<500ms,tpot<50ms", {"ttft_ms": 499, "tpot_ms": 49}, True),
        ("ttft<500ms,tpot<50ms", {"ttft_ms": 500, "tpot_ms": 49}, False),
        ("ttft:500", {"ttft_ms": 500}, True),  # vLLM's form: at or under
        ("e2el<=2s", {"e2e_ms": 2000}, True),
        ("itl<30ms", {"itl_max_ms": 30.5}, False),  # every gap of the request
    ],
)
def test_goodput_slos(text, values, met):
    assert goodput.met(goodput.parse(text), values) is met


@pytest.mark.parametrize("text", ["ttft>5ms", "latency<5ms", "ttft<fast", "tpot<5min"])
def test_bad_goodput_slos_name_the_fix(text):
    with pytest.raises(BadInput, match="goodput SLO"):
        goodput.parse(text)


def test_prompt_files_take_messages_or_prompt(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text(
        '{"prompt": "hi", "max_tokens": 8}\n\n'
        '{"messages": [{"role": "user", "content": "yo"}], "model": "m"}\n'
    )
    assert prompts.load_jsonl(path, "p.jsonl") == [
        {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 8},
        {"messages": [{"role": "user", "content": "yo"}], "model": "m"},
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{oops", "line 1 is not JSON"),
        ('{"text": "x"}', "messages"),
        ('{"prompt": "x", "max_tokens": 0}', "max_tokens"),
    ],
)
def test_bad_prompt_lines_are_named(tmp_path, line, message):
    path = tmp_path / "prompts.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(BadInput, match=message):
        prompts.load_jsonl(path, "p.jsonl")


def test_synthetic_prompts_are_seeded_and_within_their_spread():
    first = prompts.synthetic(100, 50, spread=0.2, seed=3)
    assert first == prompts.synthetic(100, 50, spread=0.2, seed=3)
    assert first != prompts.synthetic(100, 50, spread=0.2, seed=4)
    lengths = [len(p["messages"][0]["content"].split()) for p in first]
    assert 80 <= min(lengths) < 100 < max(lengths) <= 120
    assert {p["max_tokens"] for p in prompts.synthetic(10, 7)} == {7}


def generative_stats(slos: str = "ttft<150ms", requests: int = 100) -> dict:
    generated = summary(recorded(slos).to_dict()["entries"][CHAT], requests, 10.0)
    chat = gate_stats.entry(requests=requests, failures=requests - 100)
    chat["generation"] = generated
    data = gate_stats.stats(totals=chat, requests={CHAT: copy.deepcopy(chat)})
    data["target"]["api"] = "chat"
    return data


@pytest.mark.parametrize(
    ("slo", "status"),
    [
        ("ttft_p50 < 150ms", GateStatus.PASSED),
        ("ttft_p50 < 140ms", GateStatus.FAILED),
        ("ttft_p99 <= 0.2s", GateStatus.PASSED),
        ("tpot_p95 < 10.5ms", GateStatus.PASSED),
        ("itl_max < 9ms", GateStatus.FAILED),
        ("ttft_mean < 200ms", GateStatus.PASSED),
        ('"POST chat": ttft_p90 < 200ms', GateStatus.PASSED),
        ("output_tps >= 100", GateStatus.PASSED),
        ("output_tps >= 200", GateStatus.FAILED),
        ("goodput >= 5/s", GateStatus.PASSED),
        ("goodput >= 5.1/s", GateStatus.FAILED),
        ("goodput >= 51%", GateStatus.FAILED),
        ("goodput >= 50%", GateStatus.PASSED),
        ("goodput >= 0.4", GateStatus.PASSED),
        ("output_tps >= 100/s", GateStatus.PASSED),
    ],
)
def test_gate_judges_token_slos(slo, status):
    assert judge(generative_stats(), [slo]).status == status


def test_token_slo_baselines_and_units():
    assert (
        judge(generative_stats(), ["ttft_p95 < baseline * 1.01"], generative_stats()).status
        == GateStatus.PASSED
    )
    assert slo.parse("goodput >= 95%").metric == "goodput"
    assert slo.parse("goodput >= 20/s").metric == "goodput_per_s"
    with pytest.raises(BadInput, match="'20/s' for good requests per second"):
        slo.parse("goodput >= 20")
    with pytest.raises(BadInput, match="no unit"):
        slo.parse("ttft_p95 < 500")
    with pytest.raises(BadInput, match="output tokens per second"):
        slo.parse("output_tps >= 5ms")


def test_a_run_without_generation_never_passes_a_token_slo():
    plain = gate_stats.stats()
    verdict = judge(plain, ["ttft_p95 < 10s", "output_tps >= 0"])
    assert verdict.status == GateStatus.FAILED
    assert all("no output tokens" in (evaluation.note or "") for evaluation in verdict.evaluations)
    no_goodput = judge(generative_stats(slos=""), ["goodput >= 0%"])
    assert no_goodput.status == GateStatus.FAILED and "--goodput" in no_goodput.evaluations[0].note


def test_generative_run_without_output_tokens_fails_even_latency_slos():
    data = generative_stats()
    for entry in (data["totals"], *data["requests"].values()):
        del entry["generation"]
    verdict = judge(data, ["p95 < 10s"])
    assert verdict.status == GateStatus.FAILED and "no output token" in verdict.failures[0]


def test_verdict_and_metrics_show_the_token_numbers():
    data = generative_stats(requests=125)
    markdown = render.markdown(judge(data, ["ttft_p95 < 1s"]))
    assert (
        "- TTFT: p50 148.859 ms" in markdown
        and "tokens/s" in markdown
        and "goodput: 5 requests/s, 40%" in markdown
    )
    data["generator"]["cpu_peak_percent"] = 10.0
    data["run"]["complete"] = True
    logged = results.metrics(data)
    assert logged["output_tokens"] == data["totals"]["generation"]["output_tokens"]["sum"]
    assert logged["ttft_p50_ms"] == histogram.readable(data["totals"]["generation"]["ttft_ms"]["p50"]) == 149
    assert (logged["goodput_per_s"], logged["goodput_fraction"]) == (5.0, 0.4)
