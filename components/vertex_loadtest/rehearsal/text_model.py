"""The rehearsal's generative model: a word-level trigram language model, trained at start-up on the
docstrings of Python's own standard library (nothing downloaded, no text kept in this repository).

Tokens are words and punctuation marks; a docstring ends with the end-of-sequence token. Generation
samples the next token from the trigram counts of the last two tokens (backing off to bigram and
unigram counts), with a temperature; temperature 0 is greedy. The prompt's last known words seed the
context, so the answer follows from the prompt. Training takes well under a second.
"""

import importlib
import inspect
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterator

#: Standard-library modules whose docstrings (module, classes, functions) make the training text.
CORPUS_MODULES = (
    "argparse",
    "asyncio",
    "collections",
    "csv",
    "datetime",
    "functools",
    "heapq",
    "itertools",
    "json",
    "logging",
    "pathlib",
    "random",
    "statistics",
    "string",
    "textwrap",
)
EOS = "<eos>"
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_']*|[0-9]+|[.,;:!?()]")
_NO_SPACE_BEFORE = frozenset(".,;:!?)")


def tokenize(text: str) -> list[str]:
    """Splits text into the model's tokens: words, numbers and plain punctuation (markup is dropped)."""
    return _TOKEN.findall(text)


def detokenize(token: str, first: bool) -> str:
    """Returns the text a token adds to the output: a leading space except before punctuation."""
    return token if first or token in _NO_SPACE_BEFORE else f" {token}"


def corpus(modules: tuple[str, ...] = CORPUS_MODULES) -> Iterator[str]:
    """Yields the docstrings of ``modules`` and of their public classes and functions."""
    for module_name in modules:
        module = importlib.import_module(module_name)
        yield from _docstrings(module)
        for name, member in sorted(vars(module).items()):
            if not name.startswith("_") and (inspect.isclass(member) or inspect.isfunction(member)):
                yield from _docstrings(member)


def _docstrings(obj: object) -> Iterator[str]:
    doc = inspect.getdoc(obj)
    if doc:
        yield doc


class TrigramModel:
    """Counts of the next token after each pair and each single token, and overall."""

    def __init__(self, texts: Iterator[str] | None = None):
        self.trigrams: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        self.bigrams: dict[str, Counter[str]] = defaultdict(Counter)
        self.unigrams: Counter[str] = Counter()
        for text in texts if texts is not None else corpus():
            self.train(tokenize(text))

    def train(self, tokens: list[str]) -> None:
        """Adds one document's counts; the document ends with the end-of-sequence token."""
        sequence = [EOS, EOS, *tokens, EOS]
        for first, second, third in zip(sequence, sequence[1:], sequence[2:], strict=False):
            self.trigrams[(first, second)][third] += 1
            self.bigrams[second][third] += 1
            self.unigrams[third] += 1

    @property
    def vocabulary_size(self) -> int:
        return len(self.unigrams)

    def context(self, prompt: str) -> tuple[str, str]:
        """The last two prompt tokens the model knows (end-of-sequence when there are none)."""
        known = [token for token in tokenize(prompt) if token in self.unigrams]
        padded = [EOS, EOS, *known[-2:]]
        return padded[-2], padded[-1]

    def next_token(self, context: tuple[str, str], rng: random.Random, temperature: float) -> str:
        """Samples the token after ``context`` (greedy at temperature 0)."""
        counts = self.trigrams.get(context) or self.bigrams.get(context[1]) or self.unigrams
        if temperature <= 0:
            return max(counts.items(), key=lambda item: (item[1], item[0]))[0]
        tokens = list(counts)
        weights = [count ** (1.0 / temperature) for count in counts.values()]
        return rng.choices(tokens, weights)[0]

    def generate(
        self, prompt: str, rng: random.Random, temperature: float = 1.0, ignore_eos: bool = False
    ) -> Iterator[str]:
        """Yields generated tokens without end; stops at end-of-sequence unless ``ignore_eos``."""
        context = self.context(prompt)
        while True:
            token = self.next_token(context, rng, temperature)
            if token == EOS:
                if not ignore_eos:
                    return
                context = (EOS, EOS)
                continue
            yield token
            context = (context[1], token)
