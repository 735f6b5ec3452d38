"""The rehearsal's model: a small real sentiment classifier served in the Vertex AI custom-container
contract (``AIP_HTTP_PORT``, ``AIP_PREDICT_ROUTE``, ``AIP_HEALTH_ROUTE``).

Each instance ``{"text": ...}`` is turned into hashed word features and run through a two-layer
perceptron: a fixed random hidden layer and an output layer trained at start-up on the small labelled
set below (a few milliseconds; nothing is downloaded). The work is real CPU work on one thread, so
under load requests queue and latency rises, as on a real endpoint.

Run it as Vertex would run the container::

    AIP_HTTP_PORT=8081 python -m vertex_loadtest.rehearsal.model_server
"""

import asyncio
import math
import os
import random
import re
import zlib
from typing import Any

from vertex_loadtest.rehearsal.prediction_server import Behaviour, PredictionServer

FEATURES, HIDDEN = 512, 64
_WORD = re.compile(r"[a-z']+")
TRAINING = [
    ("a wonderful film, brilliant cast and a moving story", 1),
    ("i loved it and would happily watch it again", 1),
    ("great acting, great music, a joy from start to finish", 1),
    ("funny, warm and beautifully shot", 1),
    ("the best film i have seen this year", 1),
    ("terrible pacing and a plot that makes no sense", 0),
    ("boring, far too long and badly acted", 0),
    ("i walked out, a waste of time and money", 0),
    ("the worst script i have ever sat through", 0),
    ("dull characters and an awful ending", 0),
]


class SentimentModel:
    """Hashed bag of words -> ReLU hidden layer -> softmax over (negative, positive)."""

    LABELS = ("negative", "positive")

    def __init__(self, seed: int = 7):
        rng = random.Random(seed)
        self.hidden = [[rng.gauss(0, 0.5) for _ in range(FEATURES)] for _ in range(HIDDEN)]
        self.output = [[0.0] * HIDDEN for _ in self.LABELS]
        self.train(TRAINING)

    def train(self, examples: list[tuple[str, int]], epochs: int = 60, rate: float = 0.05) -> None:
        """Fits the output layer by stochastic gradient descent on softmax cross-entropy."""
        encoded = [(self.hidden_layer(self.features(text)), label) for text, label in examples]
        for _ in range(epochs):
            for hidden, label in encoded:
                scores = self.scores(hidden)
                for k, row in enumerate(self.output):
                    gradient = scores[k] - (1.0 if k == label else 0.0)
                    for j, value in enumerate(hidden):
                        row[j] -= rate * gradient * value

    def features(self, text: str) -> list[float]:
        vector = [0.0] * FEATURES
        for word in _WORD.findall(text.lower()):
            vector[zlib.crc32(word.encode()) % FEATURES] += 1.0
        return vector

    def hidden_layer(self, x: list[float]) -> list[float]:
        return [max(0.0, sum(w * v for w, v in zip(row, x, strict=True))) for row in self.hidden]

    def scores(self, hidden: list[float]) -> list[float]:
        logits = [sum(w * h for w, h in zip(row, hidden, strict=True)) for row in self.output]
        top = max(logits)
        exps = [math.exp(logit - top) for logit in logits]
        return [e / sum(exps) for e in exps]

    def predict_one(self, instance: Any) -> dict[str, Any]:
        text = instance.get("text", "") if isinstance(instance, dict) else str(instance)
        scores = self.scores(self.hidden_layer(self.features(text)))
        best = max(range(len(scores)), key=scores.__getitem__)
        return {"label": self.LABELS[best], "score": round(scores[best], 4)}

    def predict(self, instances: list[Any]) -> list[dict[str, Any]]:
        return [self.predict_one(instance) for instance in instances]


def main() -> None:
    port = int(os.environ.get("AIP_HTTP_PORT", "8080"))
    server = PredictionServer(Behaviour(predict=SentimentModel().predict), port=port)

    async def serve() -> None:
        async with await server.start() as listening:
            print(
                f"model server: {server.url}{server.predict_route} (health {server.health_route})", flush=True
            )
            await listening.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
