"""The one exception type for input a user must fix (a bad threshold, a missing locustfile, ...).

Its message names the bad input and the fix. The CLI prints it without a traceback and exits 2; in a
KFP task it is the last line of the log.
"""


class BadInput(ValueError):
    """Input the user must fix; the message says what, where, and how."""
