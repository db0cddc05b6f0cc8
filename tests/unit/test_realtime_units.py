"""The streaming scorer's pure parts: GTID positions, partitions, and the online state scored
by the engine against the nightly engine on the same frame."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from ledgerguard.db.dialect import Flavour
from ledgerguard.fraud.engine.scoring import score_frame
from ledgerguard.fraud.engine.terminal_days import (
    PROFILE_COLUMNS,
    terminal_days,
    terminal_profile_days,
    with_profile,
)
from ledgerguard.fraud.engine.terminal_history import TerminalHistory, history_in_memory
from ledgerguard.fraud.engine.windows import TX_DTYPES
from ledgerguard.fraud.store import SCORES_COLUMNS, verdict_rows
from ledgerguard.fraud.verdict_columns import verdict_literals
from ledgerguard.money import FxRates
from ledgerguard.realtime.batch import changes_of, fraud_change
from ledgerguard.realtime.binlog import BinlogTransaction, RowChange
from ledgerguard.realtime.checkpoint import VERDICTS_COLUMNS
from ledgerguard.realtime.partition import Partition
from ledgerguard.realtime.position import GtidPosition
from ledgerguard.realtime.rowdecode import _decimal
from ledgerguard.realtime.rows import (
    ROW_DTYPE,
    _currency_texts,
    rows_from_frame,
    user_time_id_order,
)
from ledgerguard.realtime.state import OnlineState
from ledgerguard.realtime.terminal_counts import TerminalCounts
from ledgerguard.settings.fraud import FraudParameters
from ledgerguard.utc import to_us
from tests.unit.fraud.helpers import assert_literals_hold, fraud_customers_of, history_of


def test_mariadb_position_advances_per_domain_and_covers():
    position = GtidPosition.parse(Flavour.MARIADB, "0-1-100,1-2-5")
    position.advance("0-1-101")
    assert position.text() == "0-1-101,1-2-5"
    assert position.covers("0-1-90") and position.covers("0-1-101")
    assert not position.covers("0-1-102") and not position.covers("2-1-1")
    replica = GtidPosition.parse(Flavour.MARIADB, "0-1-110,1-2-5,2-3-4")
    assert position.behind(replica) == 9 + 0 + 4


def test_mysql_position_is_one_interval_per_source():
    uuid = "3E11FA47-71CA-11E1-9E33-C80AA9429562"
    position = GtidPosition.parse(Flavour.MYSQL, f"{uuid}:1-41")
    position.advance(f"{uuid.lower()}:42")
    assert position.text() == f"{uuid.lower()}:1-42"
    assert position.covers(f"{uuid}:42") and not position.covers(f"{uuid}:43")


@pytest.mark.parametrize("text", ["1/1", "2/2", "x", "-1/3", "0/0"])
def test_bad_partitions_are_refused(text: str):
    with pytest.raises(ValueError, match="K/N"):
        Partition.parse(text)


def test_partition_owns_users_by_modulo():
    part = Partition.parse("1/3")
    assert part.owns(np.array([1, 2, 4, 7])).tolist() == [True, False, True, True]


def test_label_changes_move_the_fraud_count():
    assert fraud_change(None, {"is_fraud": 1}) == 1
    assert fraud_change({"is_fraud": 1}, {"is_fraud": 0}) == -1
    assert fraud_change({"is_fraud": 0}, {"is_fraud": 0}) == 0
    assert fraud_change({"is_fraud": 1}, None) == -1


def test_a_batch_splits_into_new_payments_replayed_ones_and_label_changes():
    """Transactions up to the snapshot (0-1-10) are replayed: their payments scored again, not
    counted, their labels already counted; later ones are new. Labels net per transaction."""
    snapshot = GtidPosition.parse(Flavour.MARIADB, "0-1-10")

    def payment(tx_id: int) -> RowChange:
        return RowChange("transactions", "insert", None, {"id": tx_id})

    def label(tx_id: int, was: int | None, now: int | None) -> RowChange:
        before = None if was is None else {"transaction_id": tx_id, "is_fraud": was}
        after = None if now is None else {"transaction_id": tx_id, "is_fraud": now}
        kind = "insert" if was is None else "delete" if now is None else "update"
        return RowChange("fraud_labels", kind, before, after)

    batch = [
        BinlogTransaction("0-1-9", 0.0, [payment(1), label(7, None, 1)]),
        BinlogTransaction("0-1-11", 0.0, [payment(2), payment(3), label(8, None, 1)]),
        BinlogTransaction("0-1-12", 0.0, [label(8, 1, 0), label(9, None, 1), label(5, None, 0)]),
        BinlogTransaction("0-1-13", 0.0, [label(6, 1, None)]),
    ]
    fresh, replayed, labels = changes_of(batch, snapshot)
    assert [row["id"] for row in fresh] == [2, 3]
    assert [row["id"] for row in replayed] == [1]
    # 8: +1 then -1 nets to nothing; 7 is in the snapshot; 5 is no fraud
    assert labels == {9: 1, 6: -1}


def _frame(rows: list[tuple[int, int, int, datetime, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "transaction_id": [r[0] for r in rows],
            "user_id": [r[1] for r in rows],
            "terminal_id": [r[2] for r in rows],
            "ts_us": [to_us(r[3]) for r in rows],
            "amount_units": [r[4] for r in rows],
            "usd_units": [r[4] for r in rows],
            "currency": ["USD"] * len(rows),
        }
    ).astype(TX_DTYPES)


def _nightly_day(frame: pd.DataFrame, params: FraudParameters, t0: datetime) -> pd.DataFrame:
    """The nightly verdicts of every row of `frame` up to the day after `t0`, by id."""
    return score_frame(
        frame,
        TerminalHistory.empty(),
        params,
        start=t0 - timedelta(days=30),
        end=t0 + timedelta(days=1),
        store_all=True,
    ).rows.set_index("transaction_id")


def test_streamed_one_by_one_gives_the_nightly_flags():
    """A burst, a structuring group, a spending anomaly and ordinary payments, fed one
    transaction at a time: after revisions, the same flags as one nightly `score_frame`."""
    params = FraudParameters()
    t0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
    rows = [(i, 1, 10, t0 + timedelta(minutes=i), 5_0000) for i in range(6)]
    rows += [
        (10 + i, 2, 11, t0 + timedelta(hours=i), a) for i, a in enumerate((9_500_0000, 9_400_0000))
    ]
    rows += [(20 + d, 3, 12, t0 - timedelta(days=10 - d), 30_0000) for d in range(9)]
    rows += [(40, 3, 12, t0 + timedelta(hours=1), 400_0000), (41, 4, 13, t0, 12_0000)]
    frame = _frame(rows)
    nightly = _nightly_day(frame, params, t0)["flagged"]

    state = OnlineState(
        params,
        partition=Partition(),
        terminals=TerminalCounts.empty(params),
        fx=FxRates(),
    )
    stream: dict[int, bool] = {}
    for k in range(len(frame)):
        one = frame.iloc[[k]].reset_index(drop=True)
        batch = state.score(one)
        stream |= dict(zip(batch.rows["transaction_id"], batch.rows["flagged"], strict=True))
        # the revisions are named (the verdict writes look up only those in `fraud_scores`)
        others = set(batch.rows["transaction_id"]) - set(one["transaction_id"])
        assert set(batch.revised_ids.tolist()) == others and batch.revised == len(others)
    assert stream == nightly.to_dict()
    assert [stream[i] for i in range(6)] == [True] * 6  # the burst's first charges revised
    assert stream[40] and not stream[41]


def test_a_verdict_is_written_again_only_when_its_flag_changes():
    """Earlier verdicts whose score drifts inside the same flag (a growing burst moves every
    member's features) are not rewritten; a flag that changes, and every new row, is."""
    params = FraudParameters()
    state = OnlineState(
        params, partition=Partition(), terminals=TerminalCounts.empty(params), fx=FxRates()
    )
    t0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
    combined = rows_from_frame(
        _frame([(i, 1, 10, t0 + timedelta(minutes=i), 5_0000) for i in range(4)])
    )
    combined["score_e4"] = [1000, 9000, 9000, -1]  # rows 0-2 scored before, row 3 never
    combined["flagged"] = [False, True, True, False]
    scores = pd.DataFrame(
        {
            "transaction_id": [0, 1, 2, 3],
            "score": [0.2, 0.95, 0.3, 0.1],  # 0: score moved, same flag; 1: same; 2: unflagged
            "flagged": [False, True, False, False],
        }
    )
    before = combined.copy()
    # the verdicts' positions as `score` expects them, and wrong ones (looked up by id then)
    for inside in (np.arange(4), np.array([1, 0, 2, 3]), np.arange(3)):
        combined = before.copy()
        write, new, revised = state._compare(scores, combined, new_ids=np.array([3]), inside=inside)
        assert write.tolist() == [False, False, True, True]
        assert (new, revised.tolist()) == (1, [2])
        assert combined["score_e4"].tolist() == [1000, 9000, 3000, 1000]


def test_a_restarted_state_does_not_rewrite_the_flags_it_recalls():
    """After a restart the rows read at start-up carry no verdict, and a batch wrote every one
    scored flagged again; with the stored flagged verdicts recalled, a batch writes what the
    process that wrote them would have: its new rows and the flags that change."""
    params = FraudParameters()
    t0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
    burst = [(i, 1, 10 + i, t0 + timedelta(minutes=i), 5_0000) for i in range(6)]
    ordinary = [(41, 4, 13, t0, 12_0000)]
    history = _frame(burst + ordinary)
    later = _frame([(6, 1, 20, t0 + timedelta(minutes=6), 5_0000), (42, 4, 13, t0, 12_0000)])

    def state() -> OnlineState:
        return OnlineState(
            params, partition=Partition(), terminals=TerminalCounts.empty(params), fx=FxRates()
        )

    before = state()
    before.score(history)  # the process before the restart
    restarted = state()
    restarted.load(history)
    assert sorted(restarted.revision_ids().tolist()) == [0, 1, 2, 3, 4, 5, 41]
    forgetful = state()
    forgetful.load(history)
    # the burst was flagged; row 41 is recalled flagged though it scores unflagged now (a
    # verdict of another parameter set): that flag is withdrawn, as a revision
    flagged = np.array([0, 1, 2, 3, 4, 5, 41])
    restarted.recall_flagged(flagged, np.full(len(flagged), 9000))

    rewritten = forgetful.score(later).rows
    assert sorted(rewritten["transaction_id"].tolist()) == [0, 1, 2, 3, 4, 5, 6, 42]
    recalled = restarted.score(later)
    assert sorted(recalled.rows["transaction_id"].tolist()) == [6, 41, 42]
    assert recalled.revised_ids.tolist() == [41]
    assert not recalled.rows.set_index("transaction_id")["flagged"][41]
    assert before.score(later).rows["transaction_id"].tolist() == [6, 42]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batch_rows_are_ordered_by_user_time_id_like_lexsort(seed: int):
    """Kept windows (sorted) followed by new rows, some at the same microsecond as kept ones
    with smaller or larger ids: the packed sort, or `lexsort` when it cannot tell, gives
    `lexsort`'s order."""
    rng = np.random.default_rng(seed)
    n = 300
    rows = np.zeros(n, dtype=ROW_DTYPE)
    rows["user_id"] = rng.integers(10**12, 10**12 + 6, n)
    rows["ts_us"] = rng.integers(0, 15, n) * 10**12  # spans ~ 2^53 µs: many ties
    rows["transaction_id"] = rng.permutation(n)
    kept = rows[: n - 40][
        np.lexsort(
            (rows["transaction_id"][: n - 40], rows["ts_us"][: n - 40], rows["user_id"][: n - 40])
        )
    ]
    later = rows[n - 40 :].copy()
    later["transaction_id"] += n  # ids above every kept one: the packed sort decides alone
    for tail in (rows[n - 40 :], later):
        batch = np.concatenate([kept, tail])
        expected = np.lexsort((batch["transaction_id"], batch["ts_us"], batch["user_id"]))
        order = user_time_id_order(batch, np.unique(batch["user_id"]))
        np.testing.assert_array_equal(order, expected)


def test_a_back_dated_or_replayed_transaction_is_scored_once_and_kept_once():
    params = FraudParameters()
    state = OnlineState(
        params, partition=Partition(), terminals=TerminalCounts.empty(params), fx=FxRates()
    )
    now = datetime(2026, 3, 2, 9, tzinfo=UTC)
    state.score(_frame([(1, 7, 1, now, 20_0000)]))
    old = state.score(_frame([(2, 7, 1, now - timedelta(days=90), 20_000_0000)]))
    assert old.rows["transaction_id"].tolist() == [2] and bool(old.rows["flagged"].iloc[0])
    again = state.score(_frame([(1, 7, 1, now, 20_0000)]))  # a replay after a restart
    assert 1 in again.rows["transaction_id"].tolist()
    assert state.transactions == 1  # the old one is outside the window, the replay not added


class _StoredModel:
    """A stand-in for a model store version: no fraud anywhere, version "0007"."""

    threshold = None
    combiner = None
    version = "0007"

    def probability(self, data: pd.DataFrame) -> np.ndarray:
        return np.zeros(len(data))


def test_streamed_repeated_anomalies_lower_the_bar_as_in_the_nightly_run():
    """A card misused three times in a week (4x, 5x, then 2.6x its owner's median): the stream,
    one transaction at a time, flags the 2.6x payment through the repeat bar, as nightly."""
    params = FraudParameters()
    t0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
    rows = [(d, 5, 12, t0 - timedelta(days=20 - d), 50_0000) for d in range(20)]
    rows += [
        (30, 5, 12, t0 - timedelta(days=3), 200_0000),
        (31, 5, 13, t0 - timedelta(days=1), 250_0000),
        (32, 5, 12, t0, 130_0000),
        (33, 5, 12, t0 + timedelta(hours=2), 60_0000),
    ]
    frame = _frame(rows)
    nightly = _nightly_day(frame, params, t0)
    state = OnlineState(
        params, partition=Partition(), terminals=TerminalCounts.empty(params), fx=FxRates()
    )
    stream: dict[int, tuple[bool, str]] = {}
    for k in range(len(frame)):
        batch = state.score(frame.iloc[[k]].reset_index(drop=True)).rows
        for tx, flagged, reasons in batch[["transaction_id", "flagged", "reasons"]].itertuples(
            index=False, name=None
        ):
            stream[tx] = (bool(flagged), reasons)
    assert stream == {
        tx: (bool(flagged), reasons)
        for tx, flagged, reasons in nightly[["flagged", "reasons"]].itertuples(name=None)
    }
    assert [stream[tx][0] for tx in (30, 31, 32, 33)] == [True, True, True, False]
    assert "after 2 payments of the last 7 days" in stream[32][1]


def test_stream_verdicts_name_the_model_version_like_the_nightly_ones():
    params = FraudParameters()
    state = OnlineState(
        params,
        partition=Partition(),
        terminals=TerminalCounts.empty(params),
        fx=FxRates(),
        model=_StoredModel(),
    )
    now = datetime(2026, 3, 2, 9, tzinfo=UTC)
    batch = state.score(_frame([(1, 7, 1, now, 20_0000)]))
    (row,) = verdict_rows(batch.rows, analysed_at=now, source="realtime")
    assert row["model_version"] == "0007"
    rules_only = OnlineState(
        params, partition=Partition(), terminals=TerminalCounts.empty(params), fx=FxRates()
    ).score(_frame([(1, 7, 1, now, 20_0000)]))
    (row,) = verdict_rows(rules_only.rows, analysed_at=now, source="realtime")
    assert row["model_version"] is None


def _mixed_frame(
    seed: int, users: int = 40, rows: int = 600, near_line: float = 0.1, days: int = 40
) -> pd.DataFrame:
    """Random users over `days` days with small charges, near-line amounts, a few terminals."""
    rng = np.random.default_rng(seed)
    t0 = datetime(2026, 3, 2, tzinfo=UTC)
    kind = rng.random(rows)
    units = np.where(
        kind < 0.3,
        rng.integers(1_0000, 50_0000, rows),
        np.where(
            kind < 0.4,
            rng.integers(8_000_0000, 10_000_0000, rows),
            rng.integers(10_0000, 2_000_0000, rows),
        ),
    )
    ts = [
        to_us(t0 - timedelta(days=days) + timedelta(seconds=float(s)))
        for s in np.sort(rng.random(rows) * days * 86_400)
    ]
    return pd.DataFrame(
        {
            "transaction_id": np.arange(1, rows + 1),
            "user_id": rng.integers(1, users + 1, rows),
            "terminal_id": rng.integers(1, 8, rows),
            "ts_us": ts,
            "amount_units": units,
            "usd_units": units,
            "currency": ["USD"] * rows,
        }
    ).astype(TX_DTYPES)


@pytest.mark.parametrize("seed", [1, 2])
def test_scoring_an_interval_gives_the_verdicts_of_scoring_everything(seed: int):
    """`score_frame` computes terminal features and rules only for the rows inside
    [start, end): the same verdicts, reasons included, as scoring every row."""
    params = FraudParameters()
    frame = _mixed_frame(seed)
    days = pd.DataFrame(
        {
            "terminal_id": [1, 2, 3],
            "day": [20_500, 20_505, 20_510],
            "n_tx": [4, 5, 6],
            "n_fraud": [4, 3, 0],
        }
    )
    history = history_of(days)
    cut = datetime(2026, 2, 20, tzinfo=UTC)
    end = datetime(2026, 3, 3, tzinfo=UTC)
    everything = score_frame(
        frame, history, params, start=datetime(2026, 1, 1, tzinfo=UTC), end=end, store_all=True
    ).rows
    interval = score_frame(frame, history, params, start=cut, end=end, store_all=True).rows
    expected = everything[everything["ts_us"] >= to_us(cut)].reset_index(drop=True)
    pd.testing.assert_frame_equal(interval, expected)
    assert interval["flagged"].any() and len(interval) < len(everything)


@pytest.mark.parametrize("batch", [1, 7, 50, 600])
def test_micro_batches_give_the_nightly_verdicts(batch: int):
    """The stream fed in micro-batches of any size ends with the nightly engine's flag for
    every transaction (revisions included). Without chains of near-line payments: a
    structuring group that grows for longer than the revision window is the stream's
    documented difference. Over 40 days, longer than the lookback: the revised rows' windows
    are complete (before the state kept the revision window's lookback, they lost their oldest
    rows as the user's newest moved on, and 5-8 of these flags differed from the nightly's)."""
    params = FraudParameters()
    frame = _mixed_frame(3, near_line=0.0, days=40)
    nightly = score_frame(
        frame,
        TerminalHistory.empty(),
        params,
        start=datetime(2026, 1, 1, tzinfo=UTC),
        end=datetime(2026, 3, 3, tzinfo=UTC),
        store_all=True,
    ).rows.set_index("transaction_id")
    state = OnlineState(
        params, partition=Partition(), terminals=TerminalCounts.empty(params), fx=FxRates()
    )
    stream: dict[int, tuple[float, bool]] = {}
    for first in range(0, len(frame), batch):
        verdicts = state.score(frame.iloc[first : first + batch].reset_index(drop=True)).rows
        for tx, score, flagged in verdicts[["transaction_id", "score", "flagged"]].itertuples(
            index=False, name=None
        ):
            stream[tx] = (score, bool(flagged))
    assert {tx: flagged for tx, (_, flagged) in stream.items()} == nightly["flagged"].to_dict()
    assert any(flagged for _, flagged in stream.values())
    assert 0 < state.transactions <= len(frame)  # older than the lookback: dropped


def test_the_scorer_reads_each_finished_days_terminal_profile_once():
    """With the terminal profile on, the stream's history answers like the nightly one on
    every day: the profile of the days before start-up comes with the snapshot, and each day
    that finishes is read (from the replica, here from the same data) once, at the rollover."""
    params = FraudParameters(terminal_profile_features=True)
    frame = _mixed_frame(5, days=12)
    full = terminal_profile_days(frame, params)
    no_labels = pd.DataFrame({"terminal_id": [], "day": [], "n_tx": [], "n_fraud": []})
    nightly = TerminalHistory(with_profile(no_labels, full))
    first = int(full["day"].min()) + 8
    calls: list[tuple[int, int]] = []

    def profile_of(first_day: int, stop_day: int) -> pd.DataFrame:
        calls.append((first_day, stop_day))
        return full[(full["day"] >= first_day) & (full["day"] < stop_day)]

    counts = TerminalCounts(
        no_labels,
        params,
        profile=full[full["day"] < first],
        profile_through=first - 1,
        profile_of=profile_of,
    )
    terminals = np.arange(1, 8)
    for day in (first, first, first + 1, first + 3):
        on_day = np.full(len(terminals), day)
        expected = nightly.sums(
            PROFILE_COLUMNS, terminals, on_day, days=params.terminal_profile_days, lag=1
        )
        got = counts.history(newest_day=day).sums(
            PROFILE_COLUMNS, terminals, on_day, days=params.terminal_profile_days, lag=1
        )
        for name, want, have in zip(PROFILE_COLUMNS, expected, got, strict=True):
            assert np.allclose(want, have), (day, name)
        assert expected[0].sum() > 0
    assert calls == [(first, first + 1), (first + 1, first + 3)]


def test_a_change_of_nothing_leaves_the_terminal_history_as_built():
    """Counting nothing (a label set and unset in one batch) must not rebuild the history; a
    confirmed fraud old enough to be visible must."""
    params = FraudParameters()
    no_labels = pd.DataFrame({"terminal_id": [], "day": [], "n_tx": [], "n_fraud": []})
    counts = TerminalCounts(no_labels, params)
    day = 20_000
    counts.history(newest_day=day)
    built = counts.rebuilds
    counts.add(3, day - params.label_delay_days - 1, n_fraud=0, user_id=7)
    counts.history(newest_day=day)
    assert counts.rebuilds == built
    counts.add(3, day - params.label_delay_days - 1, n_fraud=1, user_id=7)
    counts.history(newest_day=day)
    assert counts.rebuilds == built + 1


@pytest.mark.parametrize("least", [2, 0])
def test_fraud_confirmed_early_reaches_the_stream_at_once(least: int):
    """Two customers' payments at a terminal yesterday, confirmed as fraud now (an analyst's
    decision): the stream's history is rebuilt for those labels, though their day is far from
    the label horizon (the model's feature reads them), and with the rule on the next payment
    there is flagged."""
    params = FraudParameters(terminal_early_fraud_min_customers=least).at_payment_time()
    t0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
    state = OnlineState(
        params, partition=Partition(), terminals=TerminalCounts.empty(params), fx=FxRates()
    )
    yesterday = [
        (1, 10, 42, t0 - timedelta(hours=20), 20_0000),
        (2, 11, 42, t0 - timedelta(hours=12), 25_0000),
    ]
    state.count_transactions(_frame(yesterday))
    assert not state.score(_frame([(3, 3, 42, t0, 20_0000)])).rows["flagged"].any()
    built = state.terminals.rebuilds
    for _, user, terminal, at, _ in yesterday:
        state.count_fraud(terminal, to_us(at), 1, user_id=user)
    rows = state.score(_frame([(4, 5, 42, t0 + timedelta(hours=1), 20_0000)])).rows
    assert state.terminals.rebuilds == built + 1
    assert rows["flagged"].tolist() == [bool(least)]
    if least:
        assert rows["reasons"].iloc[0].startswith("terminal_risk: 2 other customers' payments")


def test_verdict_literals_hold_the_values_of_verdict_rows():
    """The upsert's values, rendered column by column from the verdict frame's arrays, are the
    values `verdict_rows` gives for the same verdicts (negative and unknown amounts, whole
    seconds, quotes, a model version or none)."""
    now = datetime(2026, 11, 29, 14, 30, 1, 250, tzinfo=UTC)
    verdicts = pd.DataFrame(
        {
            "transaction_id": [11, 12, 13],
            "user_id": [7, 8, 9],
            "ts_us": [
                to_us(datetime(2026, 11, 28, 23, 59, 59, 999_999, tzinfo=UTC)),
                to_us(datetime(2026, 11, 29, tzinfo=UTC)),
                to_us(datetime(1999, 1, 2, 3, 4, 5, 6, tzinfo=UTC)),
            ],
            "amount_units": [12_3456, -5_0000, 3],
            "currency": ["USD", "EUR", "JPY"],
            "usd_units": [12_3456, -1, 0],
            "score": [0.12345, 1.0, 0.0],
            "flagged": [False, True, False],
            "rule_ids": ["", "large_amount,velocity", ""],
            "reasons": ["", 'it\'s "large"; back\\slash', "no rate"],
            "model_version": pd.Series([None, "v3", None], dtype=object),
        }
    )
    quoted: list[str] = []

    def literal(value: str) -> str:
        quoted.append(value)
        return "<" + value + ">"

    columns = verdict_literals(verdicts, now, literal)
    expected = verdict_rows(
        verdicts,
        analysed_at=now,
        source="realtime",
        scored_at=now,
        first_scored_at=now,
    )
    # every column of both tables the scorer writes, built by the one column builder
    assert set(columns) == set(expected[0]) == set(SCORES_COLUMNS) | set(VERDICTS_COLUMNS)
    # asked for the narrow table's columns, it builds those only
    narrow = verdict_literals(verdicts, now, literal, VERDICTS_COLUMNS)
    assert set(narrow) == set(VERDICTS_COLUMNS)
    assert all(narrow[name] == columns[name] for name in VERDICTS_COLUMNS)

    assert_literals_hold(columns, expected)


def _packed_decimal(text: str, precision: int, decimals: int) -> bytes:
    """MySQL's packed DECIMAL of `text` (the server's format, written here from its definition:
    groups of 9 digits in 4 bytes, a shorter leading / trailing group, sign in the top bit, every
    bit inverted when negative)."""
    sizes = (0, 1, 1, 2, 2, 3, 3, 4, 4, 4)
    negative = text.startswith("-")
    whole, _, fraction = text.lstrip("-").partition(".")
    integral = precision - decimals
    whole, fraction = whole.rjust(integral, "0"), fraction.ljust(decimals, "0")
    out = b""
    lead = integral % 9
    if lead:
        out += int(whole[:lead]).to_bytes(sizes[lead], "big")
    for at in range(lead, integral, 9):
        out += int(whole[at : at + 9]).to_bytes(4, "big")
    for at in range(0, decimals - decimals % 9, 9):
        out += int(fraction[at : at + 9]).to_bytes(4, "big")
    if decimals % 9:
        out += int(fraction[decimals - decimals % 9 :]).to_bytes(sizes[decimals % 9], "big")
    packed = bytearray(out)
    packed[0] |= 0x80
    return bytes(b ^ 0xFF for b in packed) if negative else bytes(packed)


@pytest.mark.parametrize(
    ("text", "precision", "decimals"),
    [
        ("123.4500", 19, 4),
        ("-123456789012345.1234", 19, 4),
        ("0.0000", 19, 4),
        ("-0.0001", 19, 4),
        ("999999999999999.9999", 19, 4),
        ("42", 10, 0),
        ("-7", 10, 0),
        ("0.123456789012", 12, 12),
        ("-12345678901234567890.123456789012345678901", 41, 21),
    ],
)
def test_packed_decimals_decode_to_the_exact_decimal(text: str, precision: int, decimals: int):
    """The row decoder's DECIMAL: same digits *and* exponent as the column's text (`Decimal`
    equality alone would accept 1.5 for 1.50), negative values and leading zeros included."""
    decode = _decimal(precision, decimals)
    data = b"\x01\x02" + _packed_decimal(text, precision, decimals) + b"\x03"
    value, end = decode(data, 2)
    assert value.as_tuple() == Decimal(text).as_tuple()  # each text has `decimals` places
    assert end == len(data) - 1


def test_currency_codes_become_the_frames_strings():
    rows = np.array([b"USD", b"EUR", b"USD", b"JPY"], dtype="S3")
    texts = _currency_texts(rows)
    assert texts.tolist() == ["USD", "EUR", "USD", "JPY"] and texts.dtype == object
    assert _currency_texts(rows[:0]).tolist() == []


@pytest.mark.parametrize("min_customers", [2, 1])
def test_the_stream_learns_how_long_compromises_last_like_the_nightly_run(min_customers: int):
    """`terminal_compromise_active_probability` from the scorer's own terminal counts: the same
    flags as the nightly engine day after day as a young compromise ages past the lengths of
    six ended ones (10-15 days), and two flags that only the learnt lengths withdraw. Thirty
    stolen cards' three fraud days at their owners' quiet shops, whose labels reach the stream
    one by one with their customer, are no compromises (`terminal_compromise_min_customers`);
    counted as such (1), they call the young compromise over at once, in both paths alike.
    Like with like: the nightly engine at the stream's label horizon (`at_payment_time`)."""
    params = FraudParameters(terminal_compromise_min_customers=min_customers).at_payment_time()
    t0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
    today = int(t0.timestamp()) // 86_400
    horizon = today - params.label_delay_days
    rows = []
    for terminal, length in zip(range(100, 106), (10, 11, 12, 13, 14, 15), strict=True):
        first = horizon - 30
        rows.append((terminal, first - 1, 4, 0))
        rows += [(terminal, day, 2, 2) for day in range(first, first + length)]
        rows.append((terminal, first + length, 4, 0))
    # terminal 42: clean, then fraud on the two days up to the first payment's label horizon
    rows += [(42, horizon - 2, 3, 0), (42, horizon - 1, 2, 2), (42, horizon, 2, 2)]
    days = pd.DataFrame(rows, columns=["terminal_id", "day", "n_tx", "n_fraud"])
    # the stolen cards (customer 7 at terminals 200-229): payments known, then labels
    stolen = [(200 + k, horizon - 20 + k % 5 + d) for k in range(30) for d in range(5)]
    labelled = [(t, day) for t, day in stolen if 0 < day - (horizon - 20 + (t - 200) % 5) < 4]
    stolen_days = pd.DataFrame(
        [(t, day, 1, int((t, day) in labelled)) for t, day in stolen], columns=days.columns
    )
    # one payment a day at terminal 42 by a new customer, days 0-5 after t0
    frame = _frame([(k + 1, k + 1, 42, t0 + timedelta(days=k), 20_0000) for k in range(6)])

    def nightly(p: FraudParameters) -> dict[int, bool]:
        every_day = pd.concat([days, stolen_days, terminal_days(frame, np.zeros(0, np.int64))])
        history = TerminalHistory(
            every_day.groupby(["terminal_id", "day"], as_index=False)[["n_tx", "n_fraud"]].sum(),
            pd.concat(
                [
                    fraud_customers_of(days),
                    fraud_customers_of(stolen_days, one_customer=range(200, 230)),
                ]
            ),
        )
        scores = score_frame(
            frame, history, p, start=t0, end=t0 + timedelta(days=7), store_all=True
        )
        return scores.rows.set_index("transaction_id")["flagged"].to_dict()

    terminals = TerminalCounts(days, params, frauds=fraud_customers_of(days))
    state = OnlineState(params, partition=Partition(), terminals=terminals, fx=FxRates())
    for terminal, day in stolen:
        terminals.add(terminal, day, n_tx=1)
    for terminal, day in labelled:
        state.count_fraud(terminal, day * 86_400 * 1_000_000 + 1, 1, user_id=7)
    stream: dict[int, bool] = {}
    for k in range(len(frame)):
        batch = state.score(frame.iloc[[k]].reset_index(drop=True)).rows
        stream |= dict(zip(batch["transaction_id"], batch["flagged"], strict=True))
    assert stream == nightly(params)
    if min_customers == 1:  # 30 of 36 ended runs lasted three days: P(ten days) is 0.17
        assert not any(stream.values())
        return
    # payment k is on day 10 + k of the run; ended runs lasted 10-15 days, so P(still going)
    # is 1, 5/6, 4/6, 3/6, 2/6, 1/6 times the run's own fraud share, 1 (round 9b): below 0.5
    # from k = 4 on
    recent_only = nightly(FraudParameters(terminal_risk_run_share=False).at_payment_time())
    assert [stream[k + 1] for k in range(6)] == [True] * 4 + [False] * 2
    # times the recent share of 0.70 instead (the rule before 9b): below 0.5 from k = 2 on
    assert [recent_only[k + 1] for k in range(6)] == [True] * 2 + [False] * 4
    before = nightly(FraudParameters(terminal_compromise_history_days=0).at_payment_time())
    assert [before[k + 1] for k in range(6)] == [True] * 6


def test_the_streams_fraud_customers_are_the_nightly_ones():
    """Labels that arrive (and a few withdrawn) one by one, counted with their customer, give
    the stream's history the nightly run's defrauded customers of every terminal and days."""
    params = FraudParameters()
    frame = _mixed_frame(11, days=40)
    rng = np.random.default_rng(11)
    fraud = frame[rng.random(len(frame)) < 0.3]
    withdrawn = fraud.sample(10, random_state=1)
    counts = TerminalCounts.empty(params)
    for events, change in ((fraud, 1), (withdrawn, -1)):
        for terminal, user, at in events[["terminal_id", "user_id", "ts_us"]].itertuples(
            index=False, name=None
        ):
            counts.add(terminal, at // (86_400 * 1_000_000), n_fraud=change, user_id=user)
    kept = fraud[~fraud["transaction_id"].isin(withdrawn["transaction_id"])]
    nightly = history_in_memory(frame, kept["transaction_id"].to_numpy(), params)
    last_day = int(frame["ts_us"].max()) // (86_400 * 1_000_000)
    stream = counts.history(newest_day=last_day + 1)
    terminals = np.repeat(np.arange(1, 8), 12)
    first = np.tile(np.linspace(last_day - 40, last_day, 12).astype(np.int64), 7)
    for stop in (first + 28, first + 3):
        want = nightly.run_customers(terminals, first=first, stop=stop)
        np.testing.assert_array_equal(want, stream.run_customers(terminals, first=first, stop=stop))
    assert want.max() > 1
    with pytest.raises(ValueError, match="user_id"):
        counts.add(1, last_day, n_fraud=1)
