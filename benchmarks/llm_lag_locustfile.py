"""The built-in chat user plus a probe of the Locust process's own loop lag (benchmarks only).

A greenlet asks to wake every 5 ms and records how late it woke; when Locust quits, the lags go to
``$LLM_BENCH_LAG_FILE.<pid>`` (JSON list, ms). A lag above 5 ms means the generator's loop delayed
what it timestamps, so its TTFT and ITL read late.
"""

import json
import os
import time

import gevent
from locust import events, task

from vertex_loadtest.locust_load_test.vertex_user import VertexChatUser

PERIOD_S = 0.005
_lags_ms: list[float] = []


class ChatUser(VertexChatUser):
    @task
    def chat_next_prompt(self) -> None:
        self.chat_next()


def _probe() -> None:
    while True:
        due = time.perf_counter() + PERIOD_S
        gevent.sleep(PERIOD_S)
        _lags_ms.append((time.perf_counter() - due) * 1000)


@events.init.add_listener
def _start_probe(environment, **_kwargs) -> None:
    gevent.spawn(_probe)


@events.quitting.add_listener
def _write_lags(environment, **_kwargs) -> None:
    path = os.environ.get("LLM_BENCH_LAG_FILE")
    if path and _lags_ms:
        with open(f"{path}.{os.getpid()}", "w", encoding="utf-8") as handle:
            json.dump(_lags_ms, handle)
