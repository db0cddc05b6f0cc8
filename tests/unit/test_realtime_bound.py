"""The streaming scorer's exact re-scoring bound: re-scoring only the rows whose features can
have changed gives, batch after batch, the verdicts of re-scoring every row of the revision
window (`OnlineState(bounded=False)`) of the same state."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ledgerguard.fraud.engine.windows import TX_DTYPES, US_PER_SECOND
from ledgerguard.money import FxRates
from ledgerguard.realtime.partition import Partition
from ledgerguard.realtime.state import OnlineState
from ledgerguard.realtime.terminal_counts import TerminalCounts
from ledgerguard.settings.fraud import FraudParameters

_DAY_US = 86_400 * US_PER_SECOND
_T0 = 1_772_000_000 * US_PER_SECOND  # 2026-02-25


def _rows(
    rng: np.random.Generator, ids: np.ndarray, users: np.ndarray, ts: np.ndarray
) -> pd.DataFrame:
    """Transactions with card-testing sized charges, near-line amounts and a few terminals."""
    n = len(ids)
    kind = rng.random(n)
    units = np.where(
        kind < 0.3,
        rng.integers(1_0000, 5_0000, n),  # small charges: bursts
        np.where(
            kind < 0.45,
            rng.integers(8_000_0000, 10_000_0000, n),  # near the line: structuring groups
            rng.lognormal(11.5, 1.2, n).astype(np.int64) + 1_0000,
        ),
    )
    return pd.DataFrame(
        {
            "transaction_id": ids,
            "user_id": users,
            "terminal_id": np.where(rng.random(n) < 0.05, -1, rng.integers(1, 9, n)),
            "ts_us": ts,
            "amount_units": units,
            "usd_units": units,
            "currency": ["USD"] * n,
        }
    ).astype(TX_DTYPES)


class _Recording(OnlineState):
    """An `OnlineState` that remembers the last score and flag it computed for every row,
    written or not (a score drifting inside the same flag is not written)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.last: dict[int, tuple[float, bool]] = {}
        self.batch_ids: list[int] = []

    def _compare(self, scores, combined, new_ids, inside):  # type: ignore[no-untyped-def]
        self.batch_ids = scores["transaction_id"].tolist()
        self.last |= dict(
            zip(
                self.batch_ids,
                zip(scores["score"].tolist(), scores["flagged"].tolist(), strict=True),
                strict=True,
            )
        )
        return super()._compare(scores, combined, new_ids, inside)


class _GroupModel:
    """A stand-in for a trained model that reads the burst and group features (as the real
    ones do): a growing burst moves every member's probability, hence its score."""

    threshold = None
    combiner = None
    version = "0001"

    def probability(self, data: pd.DataFrame) -> np.ndarray:
        burst = data["velocity_burst_nb_tx"].to_numpy() / 40
        group = data["structuring_group_usd"].to_numpy() / 60_000
        minutes = data["velocity_burst_minutes"].to_numpy() / 200
        return np.clip(burst + group + minutes, 0.0, 0.99)


def _users(rng: np.random.Generator, n: int, users: int, *, skewed: bool) -> np.ndarray:
    if not skewed:
        return rng.integers(1, users + 1, n)
    weights = 1.0 / np.arange(1, users + 1) ** 1.3  # a few hot customers
    return rng.choice(np.arange(1, users + 1), n, p=weights / weights.sum())


@pytest.mark.parametrize(
    ("seed", "skewed", "model"),
    [(1, False, False), (2, True, False), (3, True, True), (4, False, True), (5, True, True)],
)
def test_bounded_re_scoring_gives_the_full_re_scorings_verdicts_at_every_batch(
    seed: int, skewed: bool, model: bool
):
    """Random batches (uniform or skewed users, back-dated rows, replays, labels arriving and
    going, days rolling over): at every batch the bounded state returns the same verdict rows
    (ids, scores, flags, rule ids, reasons), counts and revised ids as the full re-scoring,
    every row the full one re-scores has the same last score in both, and the bounded state
    re-scores fewer rows."""
    rng = np.random.default_rng(seed)
    params = FraudParameters()
    states = [
        _Recording(
            params,
            partition=Partition(),
            terminals=TerminalCounts.empty(params),
            fx=FxRates(),
            model=_GroupModel() if model else None,  # type: ignore[arg-type]
            bounded=bounded,
        )
        for bounded in (True, False)
    ]
    users = 25
    # start-up: the replica's last 40 days (rows never scored by this process)
    n = 400
    history = _rows(
        rng,
        np.arange(1, n + 1),
        _users(rng, n, users, skewed=skewed),
        np.sort(_T0 - rng.integers(0, 40 * _DAY_US, n)),
    )
    for state in states:
        state.load(history)
        state.count_transactions(history)
    seen = history
    now, next_id = _T0, n + 1
    for batch in range(60):
        now += int(rng.choice([0.1, 60, 1800, 4 * 3600, 20 * 3600]) * US_PER_SECOND)
        size = int(rng.integers(1, 40))
        ts = now - rng.integers(0, US_PER_SECOND // 10, size)
        dated = rng.random(size)
        ts = np.where(dated < 0.08, now - rng.integers(0, 5 * _DAY_US, size), ts)  # back-dated
        ts = np.where(dated < 0.02, now - rng.integers(30, 50) * _DAY_US, ts)  # long ago
        who = _users(rng, size, users, skewed=skewed)
        twin = seen.iloc[rng.integers(0, len(seen), size)]  # in the second of a held row
        tied = rng.random(size) < 0.05
        who = np.where(tied, twin["user_id"].to_numpy(), who)
        ts = np.where(tied, twin["ts_us"].to_numpy() + rng.integers(-999, 999, size), ts)
        frame = _rows(rng, np.arange(next_id, next_id + size), who, ts)
        next_id += size
        if batch % 7 == 3:  # a restart replays a few rows the state already holds
            frame = pd.concat([frame, seen.tail(3)], ignore_index=True)
        labelled = int(rng.integers(1, 4)) if batch % 6 == 5 else 0  # now and then
        labels = seen.sample(labelled, random_state=seed * 100 + batch)
        labels = labels[labels["terminal_id"] >= 0]
        change = np.where(rng.random(len(labels)) < 0.8, 1, -1)  # a label arrives or goes
        for state in states:
            for terminal, user, at, delta in zip(
                labels["terminal_id"].tolist(),
                labels["user_id"].tolist(),
                labels["ts_us"].tolist(),
                change.tolist(),
                strict=True,
            ):
                state.count_fraud(terminal, at, delta, user_id=user)
            state.count_transactions(frame[~frame["transaction_id"].isin(seen["transaction_id"])])
        bounded, full = (state.score(frame) for state in states)
        # every row the full re-scoring scored has, in the bounded state, the same last score:
        # the rows it skipped would have scored as they did when last scored
        for tx in states[1].batch_ids:
            assert states[0].last[tx] == states[1].last[tx], (batch, tx)
        pd.testing.assert_frame_equal(bounded.rows, full.rows)
        assert bounded.new == full.new
        np.testing.assert_array_equal(bounded.revised_ids, full.revised_ids)
        seen = pd.concat([seen, frame], ignore_index=True).drop_duplicates("transaction_id")
    assert states[0].scored_rows < states[1].scored_rows
    assert states[0].terminals.rebuilds > 1
    assert states[0].transactions == states[1].transactions
