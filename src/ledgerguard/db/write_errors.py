"""What a failed write means: the exceptions the writer raises and how driver errors are read.

`ledgerguard.db.writer` raises these; the API translates them at its edge (409 for
`IdempotencyConflict` and `DuplicateExternalId`, 503 with `Retry-After` for `WriteRejected`,
`WriteOutcomeUnknown` and any error `is_outage` accepts, wherever it was raised: a write, a key
lookup, a read). Their own module so that the API's error handling depends on what a failure
means, not on the group-commit machinery, and so that the classification of driver errors
(outage or bad request, duplicate `external_id`) has one home.
"""

from __future__ import annotations

from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
)


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before with a different request body."""


class DuplicateExternalId(Exception):
    """`external_id` is unique and already taken."""


class WriteRejected(Exception):
    """Nothing was written: the queue is full or the primary did not take the write in time."""


class WriteOutcomeUnknown(Exception):
    """The write was sent but its COMMIT was not confirmed in time: it may or may not exist."""


#: MariaDB/MySQL error numbers meaning "this server cannot take the write now": read-only
#: (a demoted primary), lost connection, server gone away, shutdown in progress.
_OUTAGE_CODES = {1290, 1836, 2002, 2003, 2006, 2013, 1053, 1927}


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` means the server is unavailable (retry later) rather than a bad request."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError):
            return True
        code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
        return code in _OUTAGE_CODES
    return isinstance(exc, OSError | DisconnectionError)


def translate(exc: BaseException) -> BaseException:
    """Map driver errors to what the API reports (duplicate external_id → 409)."""
    if isinstance(exc, IntegrityError) and "external_id" in str(exc.orig):
        return DuplicateExternalId("external_id is already used by another transaction")
    return exc
