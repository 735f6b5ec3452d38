"""The reference pipeline against a generative endpoint: its new parameters reach the load test, and
``kfp.local`` rehearsals (``vertex-loadtest demo --llm``) stream chat completions through the Vertex
AI emulator from the rehearsal's generative model, gate on token SLOs and always clean up."""

import json

import pytest
import yaml

from tests.pipeline.test_reference_pipeline import TEMPLATE, endpoints_left, run_demo, tasks_by_display_name

GENERATIVE_PARAMETERS = ("api", "max_tokens", "input_tokens", "output_tokens", "goodput")


def _load_tests(spec: dict) -> list[dict]:
    return [
        task
        for component in spec["components"].values()
        for task in component.get("dag", {}).get("tasks", {}).values()
        if task["taskInfo"]["name"] == "Test model performance"
    ]


def test_the_generative_parameters_reach_every_load_test():
    vertex_spec = yaml.safe_load(TEMPLATE.read_text())
    declared = vertex_spec["root"]["inputDefinitions"]["parameters"]
    assert declared["api"]["defaultValue"] == "predict"
    assert declared["prompts_uri"]["defaultValue"] == ""
    load_tests = _load_tests(vertex_spec)
    assert len(load_tests) == 2, "one load test with the built-in prompts, one with a prompts file"
    for task in load_tests:
        parameters = task["inputs"]["parameters"]
        for name in GENERATIVE_PARAMETERS:
            assert parameters[name]["componentInputParameter"].endswith(name), name
    with_file = [task for task in load_tests if "prompts" in task["inputs"].get("artifacts", {})]
    assert len(with_file) == 1
    _, importer = tasks_by_display_name(vertex_spec)["Import prompts"]
    assert importer["inputs"]["parameters"]["uri"] == {
        "componentInputParameter": "pipelinechannel--prompts_uri"
    }
    producer = with_file[0]["inputs"]["artifacts"]["prompts"]["taskOutputArtifact"]["producerTask"]
    assert importer["componentRef"]["name"] == f"comp-{producer}"


@pytest.mark.slow
def test_generative_rehearsal_streams_gates_on_tokens_and_leaves_no_endpoint(tmp_path):
    code, stdout, output = run_demo(tmp_path, "--llm")
    assert code == 0, output[-3000:]
    assert "Latency gate: ✅ PASSED" in stdout and "ttft_p95" in stdout and "goodput" in stdout
    assert endpoints_left(stdout) == 0
    stats_files = list(tmp_path.glob("pipeline-root/*/locust-load-test/stats/stats.json"))
    stats = json.loads(stats_files[0].read_text())
    generation = stats["totals"]["generation"]
    assert generation["token_count_source"] == "usage"
    assert generation["output_tokens"]["sum"] > 0 and generation["ttft_ms"]["p50"] > 0
    assert stats["target"]["path"].endswith("/chat/completions")
    assert {"POST chat question", "POST chat follow-up"} <= set(stats["requests"]), "the team's own tasks ran"


@pytest.mark.slow
def test_generative_rehearsal_fails_a_token_slo_and_still_cleans_up(tmp_path):
    code, stdout, output = run_demo(tmp_path, "--llm", "--slo", "ttft_p95 < 1ms")
    assert code == 1, output[-3000:]
    assert "Latency gate: ❌ FAILED" in stdout and "ttft_p95 < 1ms" in stdout
    assert endpoints_left(stdout) == 0
    assert list(tmp_path.glob("pipeline-root/*/endpoint-cleanup/report"))


@pytest.mark.slow
def test_a_prompts_file_is_imported_and_its_prompts_are_sent(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    lines = [
        {"messages": [{"role": "user", "content": f"Explain item {n} of the list."}], "max_tokens": 5}
        for n in range(3)
    ]
    prompts.write_text("\n".join(json.dumps(line) for line in lines))
    code, stdout, output = run_demo(tmp_path / "out", "--llm", "--prompts", str(prompts))
    assert code == 0, output[-3000:]
    assert endpoints_left(stdout) == 0
    stats_file = next((tmp_path / "out").glob("pipeline-root/*/locust-load-test-2/stats/stats.json"))
    entry = json.loads(stats_file.read_text())["requests"]["POST chat"]
    assert entry["generation"]["output_tokens"]["max"] <= 5, (
        "the file's max_tokens, not the synthetic prompts'"
    )


def test_prompts_without_llm_is_bad_input(tmp_path):
    code, _, output = run_demo(tmp_path, "--prompts", str(tmp_path / "missing.jsonl"))
    assert code == 2 and "--prompts needs --llm" in output
