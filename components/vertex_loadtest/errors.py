"""Every exception vertex-loadtest raises on purpose, under one root: :class:`VertexLoadtestError`.

- :class:`BadInput` (also a ``ValueError``): input a user must fix. Its message names the bad input
  and the fix. The CLI prints it without a traceback and exits 2; in a KFP task it is the last line
  of the log.
- :class:`TaskFailed` (also a ``RuntimeError``): a component did its job and the answer is "no":
  the gate did not pass, the load test stopped early, the cleanup left something behind. It fails
  the KFP task after the outputs are written.
- :class:`InfrastructureFailure` (also a ``RuntimeError``): the run could not produce a verdict
  (Locust died, workers never connected): not an SLO answer. The CLI prints it on one line and
  exits 1.
- Internal signals (:class:`DeadlineReached`, :class:`OperationFailed`, :class:`MalformedResponse`)
  that a runtime catches itself.

Pure Python; safe to import anywhere. See ``docs/architecture.md``.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vertex_loadtest.latency_gate.verdict import Verdict


class VertexLoadtestError(Exception):
    """The root of every exception vertex-loadtest raises on purpose."""


class BadInput(VertexLoadtestError, ValueError):
    """Input the user must fix; the message says what, where, and how."""


class InfrastructureFailure(VertexLoadtestError, RuntimeError):
    """The run could not produce a verdict (not an SLO failure); the message says what broke."""


class TaskFailed(VertexLoadtestError, RuntimeError):
    """A component's verdict is negative: fails the KFP task (and the pipeline) after its outputs."""


class GateFailed(TaskFailed):
    """The latency gate did not pass and ``fail_on_breach`` is set; ``verdict`` holds the decision."""

    def __init__(self, verdict: "Verdict") -> None:
        super().__init__(verdict.summary())
        self.verdict = verdict


class LoadTestAborted(TaskFailed):
    """The run was cut short (SIGTERM, deadline, lost worker, SLO breach); its reports were written
    and marked incomplete."""


class CleanupIncomplete(TaskFailed):
    """Something the run owns remains; the message says what and how to remove it."""


class DeadlineReached(VertexLoadtestError):
    """The overall cleanup deadline passed."""


class OperationFailed(VertexLoadtestError):
    """A long-running operation finished with ``error`` set.

    Attributes:
        name: The operation's resource name.
        code: Its ``google.rpc`` status code.
    """

    def __init__(self, name: str, code: int, message: str) -> None:
        super().__init__(f"operation {name} failed with code {code}: {message}")
        self.name = name
        self.code = code


class MalformedResponse(VertexLoadtestError):
    """A 2xx answer whose body is not a Vertex prediction response (error kind ``malformed``)."""
