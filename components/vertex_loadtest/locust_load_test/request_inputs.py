"""What the users of a run send, checked before any load: ``:predict`` payloads, or for the
generative APIs the prompts (a JSONL file or synthetic ones), ``max_tokens`` and goodput SLOs.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Any

from vertex_loadtest.errors import BadInput
from vertex_loadtest.locust_load_test import goodput, prompts, sources, target
from vertex_loadtest.locust_load_test import payloads as payload_files

if TYPE_CHECKING:
    from vertex_loadtest.locust_load_test.runner import LoadTest


def request_config(test: "LoadTest", workdir: Path) -> dict[str, Any]:
    """Returns the run-configuration entries the users read (``payloads``, or ``prompts``,
    ``max_tokens`` and ``goodput``).

    Args:
        test: The ``runner.LoadTest`` of the run.
        workdir: Where remote files are downloaded.

    Raises:
        BadInput: inputs of one API given to the other, a bad file, length or SLO.
    """
    if test.api == target.Api.PREDICT:
        generative = {
            "prompts": test.prompts,
            "max_tokens": test.max_tokens,
            "input_tokens": test.input_tokens,
            "output_tokens": test.output_tokens,
            "goodput": test.goodput,
        }
        given = [name for name, value in generative.items() if value]
        if given:
            raise BadInput(
                f"{', '.join(given)} apply to generative endpoints: add --api chat or --api stream-raw"
            )
        return {"payloads": _payloads(test, workdir)}
    if test.payloads or test.instances:
        raise BadInput(
            f"payloads and instances are for --api predict; with --api {test.api} give prompts "
            f"(JSONL of messages) or input_tokens/output_tokens for synthetic prompts"
        )
    if test.max_tokens < 0:
        raise BadInput(f"max_tokens {test.max_tokens} must be 0 (the prompt's or the server's) or more")
    goodput.parse(test.goodput)  # a bad SLO fails here, not in every Locust process
    return {"prompts": _prompts(test, workdir), "max_tokens": test.max_tokens, "goodput": test.goodput}


def _payloads(test: "LoadTest", workdir: Path) -> list[Any] | None:
    if test.payloads and test.instances:
        raise BadInput("give payloads (a JSONL file) or instances (inline JSON), not both")
    if test.payloads:
        path = sources.fetch(test.payloads, workdir / "payloads.jsonl", "payloads")
        return payload_files.load_jsonl(path, test.payloads)
    if test.instances:
        return payload_files.parse_inline(test.instances)
    return None


def _prompts(test: "LoadTest", workdir: Path) -> list[dict[str, Any]] | None:
    if test.prompts and (test.input_tokens or test.output_tokens):
        raise BadInput("give prompts (a JSONL file) or input_tokens/output_tokens (synthetic), not both")
    if test.prompts:
        path = sources.fetch(test.prompts, workdir / "prompts.jsonl", "prompts")
        return prompts.load_jsonl(path, test.prompts)
    if test.input_tokens or test.output_tokens:
        if not test.input_tokens:
            raise BadInput("output_tokens needs input_tokens too (the synthetic prompt length), e.g. 512")
        return prompts.synthetic(test.input_tokens, test.output_tokens, test.token_spread, test.prompt_seed)
    return None
