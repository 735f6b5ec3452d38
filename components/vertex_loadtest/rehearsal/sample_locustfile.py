"""The sample locustfile the rehearsal uploads to Cloud Storage: how a team writes its own test on
the built-in ``VertexEndpointUser``.

Several kinds of request, each under its own name, so the stats and the gate can judge them apart
(``"POST :predict short": p95 < 200ms``).
"""

import random

from locust import between, task

from vertex_loadtest.locust_load_test.vertex_user import VertexEndpointUser

REVIEWS = [
    "A wonderful film, the cast is brilliant and the story moved me.",
    "Terrible pacing and a plot that makes no sense at all.",
    "Not bad, not great; the soundtrack was the best part.",
    "I would happily watch it again with friends.",
]


class ReviewUser(VertexEndpointUser):
    """Classifies film reviews, mostly one at a time, sometimes in batches of eight."""

    wait_time = between(0.01, 0.05)

    @task(4)
    def one_review(self) -> None:
        self.predict([{"text": random.choice(REVIEWS)}], name=":predict short")

    @task(1)
    def batch_of_reviews(self) -> None:
        self.predict([{"text": random.choice(REVIEWS)} for _ in range(8)], name=":predict batch")
