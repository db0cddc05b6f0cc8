"""The shared UTC helpers and the atomic file write."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta, timezone

import pytest

from ledgerguard.files import write_atomic, write_text_atomic
from ledgerguard.utc import as_utc, from_us, iso_z, to_us, utc_midnight, utc_naive

PLUS_TWO = timezone(timedelta(hours=2))


def test_as_utc_converts_and_refuses_naive_unless_told():
    moment = datetime(2025, 1, 15, 2, 30, tzinfo=PLUS_TWO)
    assert as_utc(moment) == datetime(2025, 1, 15, 0, 30, tzinfo=UTC)
    assert as_utc(moment).tzinfo is UTC
    with pytest.raises(ValueError, match="naive"):
        as_utc(datetime(2025, 1, 15))
    assert as_utc(datetime(2025, 1, 15), assume_utc=True) == datetime(2025, 1, 15, tzinfo=UTC)


def test_microseconds_round_trip_exactly():
    moment = datetime(2025, 1, 15, 23, 59, 59, 999_999, tzinfo=UTC)
    assert to_us(moment) == 1_736_985_599_999_999
    assert from_us(to_us(moment)) == moment
    assert from_us(-1) == datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)


def test_naive_midnight_and_iso():
    moment = datetime(2025, 1, 15, 1, 0, tzinfo=PLUS_TWO)  # 2025-01-14 23:00 UTC
    assert utc_naive(moment) == datetime(2025, 1, 14, 23, 0)
    assert utc_midnight(moment) == datetime(2025, 1, 14, tzinfo=UTC)
    assert iso_z(moment) == "2025-01-14T23:00:00.000000Z"
    assert iso_z(datetime(2025, 1, 14), assume_utc=True) == "2025-01-14T00:00:00.000000Z"


def test_atomic_write_replaces_whole_file_with_its_mode(tmp_path):
    path = tmp_path / "sub" / "secret.json"
    write_text_atomic(path, "old", mode=0o600)
    write_text_atomic(path, "new", mode=0o600)
    assert path.read_text() == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secret.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "report.csv"
    write_text_atomic(path, "complete\n")

    def fail(out):
        out.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomic(path, fail)
    assert path.read_text() == "complete\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.csv"]
