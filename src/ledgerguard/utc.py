"""UTC time at the edges: one set of helpers instead of a private copy in each module.

LedgerGuard works in timezone-aware UTC everywhere; DATETIME(6) columns hold naive UTC, the fraud
engine holds microseconds since the epoch, files and reports write ISO 8601 with `Z`. These
helpers convert between the three and refuse a naive datetime where its meaning would be a guess
(`assume_utc=True` is for the edges where naive *means* UTC: the database, the API's input, CLI
options).
"""

from __future__ import annotations

from datetime import UTC, datetime

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US_PER_SECOND = 1_000_000
_SECONDS_PER_DAY = 86_400


def as_utc(moment: datetime, *, assume_utc: bool = False) -> datetime:
    """A plain timezone-aware UTC `datetime` (not a subclass) for the same instant.

    A pendulum `DateTime` (Airflow's data interval) becomes a plain `datetime`: database drivers
    pick their encoder by exact type, and would send a subclass as a string with an offset.
    Naive input raises `ValueError` unless `assume_utc`, which reads it as UTC.
    """
    if moment.tzinfo is UTC and type(moment) is datetime:
        return moment  # already one (`datetime.now(UTC)`, the API's hot path: issue #13)
    if moment.tzinfo is None:
        if not assume_utc:
            raise ValueError("naive datetime given; LedgerGuard works in timezone-aware UTC")
        moment = moment.replace(tzinfo=UTC)
    utc = moment.astimezone(UTC)
    return datetime(
        utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond, UTC
    )


def utc_naive(moment: datetime) -> datetime:
    """A timezone-aware datetime as the naive UTC value a DATETIME column holds."""
    return as_utc(moment).replace(tzinfo=None)


def utc_midnight(moment: datetime, *, assume_utc: bool = False) -> datetime:
    """00:00 UTC of the UTC day `moment` falls on."""
    return as_utc(moment, assume_utc=assume_utc).replace(hour=0, minute=0, second=0, microsecond=0)


def to_us(moment: datetime) -> int:
    """Microseconds since 1970-01-01 UTC of a timezone-aware datetime (exact, no float)."""
    delta = as_utc(moment) - EPOCH
    return (delta.days * _SECONDS_PER_DAY + delta.seconds) * US_PER_SECOND + delta.microseconds


def from_us(ts_us: int) -> datetime:
    """The aware UTC datetime of microseconds since 1970-01-01 UTC (inverse of `to_us`)."""
    seconds, micros = divmod(int(ts_us), US_PER_SECOND)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=micros)


def iso_z(moment: datetime, *, assume_utc: bool = False) -> str:
    """ISO 8601 in UTC with microseconds and `Z`: `2025-01-15T08:30:00.000000Z`."""
    utc = as_utc(moment, assume_utc=assume_utc)
    return utc.isoformat(timespec="microseconds").replace("+00:00", "Z")
