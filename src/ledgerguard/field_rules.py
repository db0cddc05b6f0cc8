"""Field rules that the API and the importers apply alike, so one refuses what the other does.

Kept at the bottom of the layering (no imports of the package) because `api` and `fraud` both
use them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

#: How far in the future `occurred_at` may lie (clock skew between client and server).
MAX_CLOCK_SKEW = timedelta(minutes=5)
#: The earliest `occurred_at` accepted.
EARLIEST_OCCURRED_AT = datetime(1999, 1, 1, tzinfo=UTC)
#: Control characters (C0 and DEL): refused in every free-text identifier.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
#: The same rule as a JSON-schema pattern (what the OpenAPI document declares).
NO_CONTROL_CHARACTERS_PATTERN = r"^[^\x00-\x1f\x7f]+$"


def latest_occurred_at(now: datetime | None = None) -> datetime:
    """The latest `occurred_at` accepted now."""
    return (now or datetime.now(UTC)) + MAX_CLOCK_SKEW


def moment_problem(value: datetime, *, field: str) -> str | None:
    """Why a timezone-aware moment (`occurred_at`, `labelled_at`) is refused, or None when it is
    in the API's range: 1999 or later, not beyond now + `MAX_CLOCK_SKEW`."""
    if value > latest_occurred_at():
        return f"{field} must not be in the future"
    if value < EARLIEST_OCCURRED_AT:
        return f"{field} must be in 1999 or later"
    return None


def occurred_at_problem(value: datetime) -> str | None:
    """Why `occurred_at` (timezone-aware) is refused, or None when it is in range."""
    return moment_problem(value, field="occurred_at")
