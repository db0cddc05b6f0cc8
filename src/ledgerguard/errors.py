"""The base exception of the library.

Library code raises subclasses of `LedgerGuardError` whose message says what went wrong *and how to
fix it*; the CLI and the API translate them to an exit code or an HTTP answer at their edge, so a
user sees one clear sentence, never a traceback.
"""


class LedgerGuardError(Exception):
    """An expected failure with a message fit for the user."""
