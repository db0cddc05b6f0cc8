"""The flag threshold cut from the pooled validation windows (`engine.threshold`, round 8b)."""

from __future__ import annotations

import numpy as np

from ledgerguard.fraud.engine.metrics import (
    precision_lower_bounds,
    threshold_for_bounded_precision,
    threshold_for_precision,
)
from ledgerguard.fraud.engine.threshold import choose_threshold
from ledgerguard.settings.fraud import FraudParameters


def _days(frauds: list[int], legit: list[int], score: float) -> tuple[np.ndarray, ...]:
    """Rows at one score: per day (index), that many frauds and legitimate rows."""
    day = np.concatenate(
        [np.full(f + g, d) for d, (f, g) in enumerate(zip(frauds, legit, strict=True))]
    )
    fraud = np.concatenate(
        [np.r_[np.ones(f), np.zeros(g)] for f, g in zip(frauds, legit, strict=True)]
    )
    return fraud.astype(int), np.full(len(day), score), day


def _stack(*parts: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    return tuple(np.concatenate(column) for column in zip(*parts, strict=True))


def _weeks(bad_days: int, frauds: int = 18, legit: int = 2) -> tuple[np.ndarray, ...]:
    """Four weeks: sure frauds at 0.9 every day, a mixed band at 0.7 (18 frauds and 2
    legitimate rows a day, except on the last `bad_days` days: `frauds` and `legit`),
    legitimate traffic at 0.3."""
    good = 28 - bad_days
    return _stack(
        _days([72] * 28, [0] * 28, 0.9),
        _days([18] * good + [frauds] * bad_days, [2] * good + [legit] * bad_days, 0.7),
        _days([2] * 28, [200] * 28, 0.3),
    )


def _choose(rule: str, fraud: np.ndarray, score: np.ndarray, day: np.ndarray):
    params = FraudParameters(threshold_rule=rule)
    return choose_threshold(fraud, score, day // 7, day, params)


def test_stable_weeks_give_todays_threshold():
    fraud, score, day = _weeks(bad_days=0)
    assert threshold_for_precision(fraud, score, 0.9) == 0.7
    bounded = threshold_for_bounded_precision(fraud, score, day, 0.9)
    assert bounded.reached and bounded.threshold == 0.7
    assert 0.9 <= bounded.lower_bound < bounded.precision
    choice = _choose("bound", fraud, score, day)
    assert choice.threshold == _choose("pooled", fraud, score, day).threshold == 0.7
    assert choice.window_precision == [0.9783] * 4  # 90 of 92 a day
    assert "95% lower bound of the precision reaches 0.90" in choice.reason
    assert FraudParameters().threshold_rule == "bound"


def test_a_burst_of_false_alarms_in_one_week_raises_the_threshold():
    # two days of the last week with 80 false alarms each in the band at 0.7
    fraud, score, day = _weeks(bad_days=2, frauds=10, legit=80)
    pooled = _choose("pooled", fraud, score, day)
    # pooled the band passes (0.922), though its last week is at 0.78
    assert pooled.threshold == 0.7 and pooled.window_precision[3] < 0.8
    assert "pooled precision" in pooled.reason
    bound = _choose("bound", fraud, score, day)
    assert bound.threshold == 0.9 and bound.window_precision == [1.0] * 4
    assert bound.candidates["pooled"]["threshold"] == 0.7
    assert bound.candidates["pooled"]["window_precision"] == pooled.window_precision
    # the same rows with the bad ones spread over every day of that week: less noise
    spread = day.copy()
    spread[day >= 21] = np.random.default_rng(0).permutation(day[day >= 21])
    assert _choose("bound", fraud, score, spread).threshold == 0.7


def test_a_window_uniformly_worse_is_not_counted_as_noise():
    # every day of the last week a little worse: as an earlier window scored by a model
    # trained on fewer days is; a bound across windows would react (to 0.9)
    fraud, score, day = _weeks(bad_days=7, frauds=14, legit=26)
    bound = _choose("bound", fraud, score, day)
    assert bound.threshold == 0.7 and bound.window_precision[3] < 0.8
    across = threshold_for_bounded_precision(fraud, score, day, 0.9)
    assert across.threshold == 0.9


def test_the_bound_widens_with_clustering_and_few_flags():
    fraud, score, day = _weeks(bad_days=2, frauds=10, legit=80)
    _, flags, precision, lower, effective = precision_lower_bounds(fraud, score, day, 0.95)
    assert np.all(lower < precision) and np.all(effective <= flags)
    _, _, _, row_level, _ = precision_lower_bounds(fraud, score, np.arange(len(day)), 0.95)
    assert lower[1] < row_level[1] < precision[1]  # days cluster the bad rows
    higher = precision_lower_bounds(fraud, score, day, 0.99)[3]
    assert np.all(higher < lower)


def test_too_few_flags_flag_only_the_highest_score():
    # a week of 40 frauds and one false alarm: 0.976, but 41 flags cannot show 0.9 with
    # 95 % confidence (Wilson: 0.88), so only the highest score is flagged
    fraud, score, day = _stack(
        _days([2, 2, 2, 1, 1, 1, 1], [0] * 7, 0.8),
        _days([5, 5, 4, 4, 4, 4, 4], [1, 0, 0, 0, 0, 0, 0], 0.6),
        _days([0] * 7, [70] * 7, 0.2),
    )
    assert threshold_for_precision(fraud, score, 0.9) == 0.6  # today's rule takes them all
    bounded = threshold_for_bounded_precision(fraud, score, day, 0.9)
    assert not bounded.reached and bounded.threshold == 0.8
    choice = _choose("bound", fraud, score, day)
    assert choice.threshold == 0.8 and "too few flags" in choice.reason
    assert choice.candidates["pooled"]["threshold"] == 0.6
    # everything in one cluster counts as one draw, however many rows
    many, many_score, one_day = _stack(_days([5000], [0], 0.8), _days([0], [500], 0.2))
    assert not threshold_for_bounded_precision(many, many_score, one_day, 0.9).reached
    empty = threshold_for_bounded_precision(np.array([]), np.array([]), np.array([]), 0.9)
    assert empty.threshold == 1.0 and not empty.reached


def test_never_below_the_lowest_stored_score():
    floor = FraudParameters().store_min_score
    fraud, score, day = _stack(_days([60] * 28, [1] * 28, floor / 2))
    choice = _choose("bound", fraud, score, day)
    assert choice.threshold == FraudParameters().store_min_score
    assert "store_min_score" in choice.reason


def test_the_model_adds_to_the_rules_flags_at_its_own_cut():
    # round 9: rows the rules alone flag stay flagged with a model (a hard rule's at 1.0,
    # a soft rule's at 0.6, half of those false alarms, as a terminal after its compromise
    # ended); the threshold is cut for the target on the rows the rules do not flag
    fraud, score, day = _stack(
        _days([50] * 28, [0] * 28, 1.0),
        _days([30] * 28, [0] * 28, 0.9),
        _days([4] * 28, [6] * 28, 0.7),
        _days([5] * 28, [5] * 28, 0.6),
        _days([2] * 28, [200] * 28, 0.3),
    )
    kept = (score == 1.0) | (score == 0.6)
    for rule in ("pooled", "bound"):
        params = FraudParameters(threshold_rule=rule)
        choice = choose_threshold(fraud, score, day // 7, day, params, kept=kept)
        # what the model adds: the band at 0.9 (30 of 30 a day), not the one at 0.7 (34 of 40)
        assert choice.rule == rule + "+added" and choice.threshold == 0.9
        assert "what the model adds" in choice.reason
        assert "rules' own flags are kept below it" in choice.reason
        assert set(choice.candidates) == {
            "pooled+kept",
            "bound+kept",
            "pooled+added",
            "bound+added",
        }
        # what it flags: the rules' rows and the band at 0.9, 85 of 90 a day; 85 of 91 frauds
        assert choice.window_precision == [round(85 / 90, 4)] * 4
        assert choice.candidates[rule + "+added"]["recall"] == round(85 / 91, 4)
        # cut on the score over every row, the rules' precise rows at 1.0 carry the band at
        # 0.7 (84 of 90 a day): 89 of 100 flagged a day with the rules' rows below it
        kept_cut = choice.candidates[rule + "+kept"]
        assert kept_cut["threshold"] == 0.7 and kept_cut["window_precision"] == [0.89] * 4
        assert kept_cut["recall"] == round(89 / 91, 4)
        # no flags kept (the setting off): the cut on the score, its figures the score's alone
        alone = choose_threshold(fraud, score, day // 7, day, params, kept=None)
        assert alone.rule == rule and alone.threshold == 0.7
        assert set(alone.candidates) == {"pooled", "bound"}
        assert alone.window_precision == [round(84 / 90, 4)] * 4
        assert alone.threshold == _choose(rule, fraud, score, day).threshold
    assert FraudParameters().model_keeps_rule_flags


def test_rules_less_precise_than_the_target_leave_the_model_its_own_cut():
    # the rules' own rows at half precision: cut on what the model adds, the band at 0.7
    # (77 of 82) is still added; the rules' imprecision is theirs, no cut could remove it
    fraud, score, day = _stack(
        _days([72] * 28, [0] * 28, 0.9),
        _days([5] * 28, [5] * 28, 0.7),
        _days([5] * 28, [5] * 28, 0.6),
        _days([2] * 28, [200] * 28, 0.3),
    )
    kept = score == 0.6
    for rule in ("pooled", "bound"):
        params = FraudParameters(threshold_rule=rule)
        choice = choose_threshold(fraud, score, day // 7, day, params, kept=kept)
        assert choice.rule == rule + "+added" and choice.threshold == 0.7
        # the band, the sure frauds and the rules' rows: 82 of 92 a day
        assert choice.window_precision == [round(82 / 92, 4)] * 4
    # every row flagged by the rules: no row left to cut on, the model adds nothing
    everything = choose_threshold(
        fraud, score, day // 7, day, FraudParameters(), kept=np.ones(len(score), bool)
    )
    assert everything.threshold == 1.0
    assert everything.window_precision == [round(84 / 294, 4)] * 4


def test_one_rule_says_whether_the_rules_flags_are_kept():
    # training and scoring both ask FraudParameters.keeps_rule_flags
    assert FraudParameters().keeps_rule_flags(learned=False)
    assert not FraudParameters(model_keeps_rule_flags=False).keeps_rule_flags(learned=True)
    # p as the score overrules the soft rules, unless the version has learned weights
    assert not FraudParameters(model_score="model").keeps_rule_flags(learned=False)
    assert FraudParameters(model_score="model").keeps_rule_flags(learned=True)
    assert FraudParameters(model_score="learned").keeps_rule_flags(learned=False)
    assert FraudParameters(model_score="model").model_decides(learned=False)
    assert not FraudParameters(model_score="model").model_decides(learned=True)
