"""Inputs of generative runs: the request path of each API, and the checks
that refuse inputs of one API given to another before any load is sent."""

from pathlib import Path

import pytest

from vertex_loadtest.errors import BadInput
from vertex_loadtest.locust_load_test import request_inputs, target
from vertex_loadtest.locust_load_test.runner import LoadTest

ENDPOINT = "projects/p/locations/us-central1/endpoints/42"


@pytest.mark.parametrize(
    ("api", "path"),
    [
        ("predict", f"/v1/{ENDPOINT}:predict"),
        ("chat", f"/v1beta1/{ENDPOINT}/chat/completions"),
        ("stream-raw", f"/v1/{ENDPOINT}:streamRawPredict"),
    ],
)
def test_endpoint_paths_per_api(monkeypatch, api, path):
    monkeypatch.delenv("VERTEX_LOADTEST_API_ENDPOINT", raising=False)
    resolved = target.resolve(endpoint=ENDPOINT, api=api)
    assert (resolved.host, resolved.predict_path) == ("https://us-central1-aiplatform.googleapis.com", path)
    assert resolved.as_dict()["api"] == api


def test_host_paths_per_api():
    assert target.resolve(host="http://127.0.0.1:9", api="chat").predict_path == "/v1/chat/completions"
    assert target.resolve(host="http://127.0.0.1:9/generate", api="stream-raw").predict_path == "/generate"
    with pytest.raises(BadInput, match="api 'grpc' is not one of predict, chat, stream-raw"):
        target.resolve(host="http://127.0.0.1:9", api="grpc")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"api": "predict", "max_tokens": 5}, "max_tokens apply to generative endpoints: add --api chat"),
        ({"api": "predict", "goodput": "ttft<1s"}, "goodput apply to generative endpoints"),
        ({"api": "chat", "instances": "[1]"}, "payloads and instances are for --api predict"),
        ({"api": "chat", "output_tokens": 5}, "output_tokens needs input_tokens"),
        ({"api": "chat", "input_tokens": 5, "prompts": "p.jsonl"}, "not both"),
        ({"api": "chat", "input_tokens": 5, "token_spread": 1.0}, "token spread 1.0"),
        ({"api": "chat", "goodput": "ttft>1s"}, "goodput SLO 'ttft>1s'"),
        ({"api": "chat", "max_tokens": -1}, "max_tokens -1"),
    ],
)
def test_inputs_of_the_wrong_api_are_refused(tmp_path: Path, fields, message):
    with pytest.raises(BadInput, match=message):
        request_inputs.request_config(LoadTest(host="http://127.0.0.1:9", **fields), tmp_path)


def test_generative_config_carries_prompts_max_tokens_and_goodput(tmp_path: Path):
    test = LoadTest(
        host="http://127.0.0.1:9",
        api="chat",
        input_tokens=8,
        output_tokens=4,
        max_tokens=9,
        goodput="ttft<1s",
    )
    config = request_inputs.request_config(test, tmp_path)
    assert len(config["prompts"]) > 1 and config["prompts"][0]["max_tokens"] in range(1, 9)
    assert (config["max_tokens"], config["goodput"]) == (9, "ttft<1s")
    assert (
        request_inputs.request_config(LoadTest(host="http://127.0.0.1:9", api="chat"), tmp_path)["prompts"]
        is None
    )
