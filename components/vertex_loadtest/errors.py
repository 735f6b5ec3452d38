"""The exceptions a user reads: input to fix (a bad threshold, a missing locustfile, ...) and a run that
could not produce a verdict (Locust died, workers never connected).

Their messages say what happened and what to do. The CLI prints them on one line, without a traceback,
and exits 2 for bad input, 1 for an infrastructure failure; in a KFP task the message is the last line
of the log.
"""


class BadInput(ValueError):
    """Input the user must fix; the message says what, where, and how."""


class InfrastructureFailure(RuntimeError):
    """The run could not produce a verdict (not an SLO failure); the message says what broke."""
