"""A team-style locustfile on the built-in user that also records every raw response time, so tests
can compare the reported percentiles with the exact ones (the ground truth)."""

import os

from locust import events, task

from vertex_loadtest.locust_load_test.vertex_user import VertexEndpointUser

_RAW = open(os.path.join(os.environ["RAW_SAMPLES_DIR"], f"samples-{os.getpid()}.txt"), "a")  # noqa: SIM115


@events.request.add_listener
def _record(response_time, exception=None, **_kwargs):
    if exception is None:
        _RAW.write(f"{response_time!r}\n")
        _RAW.flush()


class RecordingUser(VertexEndpointUser):
    """The built-in user's behaviour: the run's payloads, round robin."""

    @task
    def send_next_payload(self):
        self.predict_next()
