"""A team-style locustfile on the built-in chat user that also records every successful request's raw
generation numbers, so tests can compare the merged histograms with the exact ones."""

import json
import os

from locust import events, task

from vertex_loadtest.locust_load_test.vertex_user import VertexChatUser

_RAW = open(os.path.join(os.environ["RAW_SAMPLES_DIR"], f"generations-{os.getpid()}.jsonl"), "a")  # noqa: SIM115


@events.request.add_listener
def _record(response_time, exception=None, context=None, **_kwargs):
    generation = (context or {}).get("generation")
    if exception is None and generation is not None:
        record = {
            "latency": response_time,
            "ttft": generation.ttft_ms,
            "tpot": generation.tpot_ms,
            "itl": generation.itl_ms,
            "output_tokens": generation.output_tokens,
            "input_tokens": generation.input_tokens,
        }
        _RAW.write(json.dumps(record) + "\n")
        _RAW.flush()


class RecordingChatUser(VertexChatUser):
    """The built-in chat user's behaviour: the run's prompts, round robin."""

    @task
    def send_next_prompt(self):
        self.chat_next()
