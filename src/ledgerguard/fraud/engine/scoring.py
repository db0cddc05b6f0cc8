"""From a transaction frame to verdicts: features, rules, one score, reasons.

`score_frame` is the whole engine on data already in memory; the pipeline calls it once per page
of users read from the replica, the evaluation and the unit tests call it on synthetic frames.
Both paths therefore give the same verdicts for the same transactions.

Score: noisy-OR of the rules, `score = 1 - prod(1 - weight_r * strength_r)`, rounded half-even
to 4 decimals (the `fraud_scores.score` column). A transaction is FLAGGED_FRAUD when the score
is at least `score_threshold` or a hard rule fired (then the score is 1). With a model whose
version carries a learned combination (`engine.combiner`), that combination of the soft rules'
signals and the model's probability is the score instead, with the version's threshold.
With a model the rules' own flags stay (`model_keeps_rule_flags`): a row is also flagged when
the rules alone would flag it, so the model adds flags and never removes one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import numpy as np
import pandas as pd

from ledgerguard.fraud.engine.combiner import ScoreCombiner
from ledgerguard.fraud.engine.features import build_features
from ledgerguard.fraud.engine.model_evidence import evidence
from ledgerguard.fraud.engine.rules import RULE_IDS, RULES
from ledgerguard.fraud.engine.terminal_history import TerminalHistory
from ledgerguard.fraud.engine.windows import US_PER_SECOND, in_order, sort_frame
from ledgerguard.settings.fraud import FraudParameters
from ledgerguard.utc import to_us


class ProbabilityModel(Protocol):
    """What the scorer needs of a trained model (`ledgerguard.fraud.engine.model.FraudModel`).

    A protocol rather than the class, so the scorer does not depend on the training code (which
    itself scores frames to evaluate a model).
    """

    #: Flag threshold chosen on validation data (None: `score_threshold` applies).
    threshold: float | None
    #: Model store version recorded on each verdict (None: a model file outside the store).
    version: str | None
    #: The version's learned score combination (None: `model_score` decides, see score_frame).
    combiner: ScoreCombiner | None

    def probability(self, data: pd.DataFrame) -> np.ndarray:
        """P(fraud) per row of the feature frame."""
        ...


#: Columns of the verdict frame returned for stored rows.
VERDICT_COLUMNS = (
    "transaction_id",
    "user_id",
    "ts_us",
    "amount_units",
    "currency",
    "usd_units",
    "score",
    "flagged",
    "rule_ids",
    "reasons",
    "model_version",
)


#: Rule id of the trained model's signal (`ledgerguard fraud train`).
MODEL_SIGNAL = "model"

#: Columns of the soft rules (those a learned combination weighs) among `RULES`.
SOFT_COLUMNS = np.array([column for column, rule in enumerate(RULES) if not rule.hard])
SOFT_RULE_IDS: tuple[str, ...] = tuple(RULES[column].id for column in SOFT_COLUMNS)


@dataclass(frozen=True)
class RuleSignals:
    """Every rule's outcome on every row: what any score combination starts from."""

    strength: np.ndarray  # rows x RULES, in [0, 1]
    fired: np.ndarray  # rows x RULES
    hard: np.ndarray  # rows: a hard rule fired

    def weighted(self, params: FraudParameters) -> np.ndarray:
        """Strengths times the noisy-OR weights (hard rules: weight 1)."""
        weights = [1.0 if rule.hard else params.rule_weight(rule.id) for rule in RULES]
        return self.strength * np.array(weights)

    def flagged(self, params: FraudParameters, own_score: np.ndarray | None = None) -> np.ndarray:
        """What the rules alone flag: a hard rule, or their noisy-OR at `score_threshold`.

        `own_score`: that noisy-OR when the caller has it already (`score_frame`)."""
        if own_score is None:
            own_score = noisy_or(self.weighted(params))
        return self.hard | (own_score >= params.score_threshold)

    def learned_parts(self, combiner: ScoreCombiner, probability: np.ndarray) -> np.ndarray:
        """Strengths and p times the learned weights (hard rules: weight 1), model last."""
        parts = np.column_stack([self.strength, np.zeros(len(probability))])
        learned = combiner.parts(self.strength[:, SOFT_COLUMNS], probability)
        parts[:, SOFT_COLUMNS] = learned[:, :-1]
        parts[:, -1] = learned[:, -1]
        return parts

    def combined(self, combiner: ScoreCombiner, probability: np.ndarray) -> np.ndarray:
        """The learned combination's score; 1 where a hard rule fired."""
        return np.where(self.hard, 1.0, combiner.score(self.strength[:, SOFT_COLUMNS], probability))


def noisy_or(weighted: np.ndarray) -> np.ndarray:
    """`1 - prod(1 - weight * strength)` per row, rounded as `fraud_scores.score` stores it."""
    return np.round(1.0 - np.prod(1.0 - weighted, axis=1), 4)


def rule_signals(data: pd.DataFrame, params: FraudParameters) -> RuleSignals:
    """Evaluate every rule on a frame holding the transactions and their features."""
    strength = np.zeros((len(data), len(RULES)))
    fired = np.zeros((len(data), len(RULES)), dtype=bool)
    hard = np.zeros(len(data), dtype=bool)
    for column, rule in enumerate(RULES):
        outcome = rule.evaluate(data, params)
        strength[:, column] = outcome.strength
        fired[:, column] = outcome.fired
        if rule.hard:
            hard |= outcome.fired
    return RuleSignals(strength=strength, fired=fired, hard=hard)


def _signal_ids(probability: np.ndarray | None) -> tuple[str, ...]:
    """Ids of the score's columns: every rule, then the model when there is one."""
    return RULE_IDS if probability is None else (*RULE_IDS, MODEL_SIGNAL)


@dataclass(frozen=True)
class Combined:
    """The score and flag of every row, and what its reasons need to know of how they were made.

    Columns of `fired` and `parts` are the signals: every rule, then the model when there is one
    (`_signal_ids`).
    """

    score: np.ndarray
    flagged: np.ndarray
    fired: np.ndarray
    #: Per signal, what a flag no rule explains is said to come from (the weighted signals, or
    #: the learned combination's parts).
    parts: np.ndarray
    #: Rows flagged only because the rules alone flag them (below the model's threshold).
    rules_only: np.ndarray
    #: The rules' weighted strengths and their own noisy-OR of them (hand-set weights).
    rule_parts: np.ndarray
    rule_score: np.ndarray
    threshold: float
    probability: np.ndarray | None
    #: How the model's probability counts in the score, in the model's reason.
    role: str


def combine(
    data: pd.DataFrame,
    signals: RuleSignals,
    params: FraudParameters,
    model: ProbabilityModel | None,
) -> Combined:
    """Score and flag every row from the rules' signals and the model's probability, as
    `score_frame`'s docstring describes."""
    weighted, fired, hard = signals.weighted(params), signals.fired, signals.hard
    rule_parts = weighted  # the rules' own parts (a model's column is stacked on a copy)
    rule_score = noisy_or(weighted)  # the rules' own score: the score without a model
    kept = np.zeros(len(data), dtype=bool)  # rows the rules alone flag, kept with a model
    # A model brings the threshold chosen on its validation days for the target precision.
    threshold = params.score_threshold
    if model is not None and model.threshold is not None:
        threshold = model.threshold
    probability = model.probability(data) if model is not None else None
    combiner = model.combiner if model is not None else None
    learned = combiner is not None
    decides = probability is not None and params.model_decides(learned)
    if probability is not None:
        weighted = np.column_stack([weighted, params.weight_model * probability])
        # when the model's p is the score, a flag by it always names it among the reasons
        named_from = min(params.model_reason_probability, threshold) if decides else None
        fired = np.column_stack(
            [fired, probability >= (named_from or params.model_reason_probability)]
        )
    score = noisy_or(weighted) if probability is not None else rule_score
    if probability is not None and params.keeps_rule_flags(learned):
        kept = signals.flagged(params, rule_score)
    if decides:
        score = np.where(hard, 1.0, np.round(probability, 4))
    # what a flag without a fired rule is said to come from: the weighted signals
    parts = weighted
    if combiner is not None and probability is not None:
        score = signals.combined(combiner, probability)
        parts = signals.learned_parts(combiner, probability)
    if decides:
        role = "the score"
    elif combiner is not None:
        role = f"learned weight {combiner.weights[-1]:.2f}"
    else:
        role = f"weight {params.weight_model}"
    return Combined(
        score=score,
        flagged=hard | kept | (score >= threshold),
        fired=fired,
        parts=parts,
        rules_only=kept & ~hard & (score < threshold),
        rule_parts=rule_parts,
        rule_score=rule_score,
        threshold=threshold,
        probability=probability,
        role=role,
    )


@dataclass
class PageScores:
    """Verdicts of one frame: the rows worth storing plus counts over every analysed row."""

    rows: pd.DataFrame
    analysed: int = 0
    flagged: int = 0
    no_usd_rate: int = 0
    counts_by_rule: dict[str, int] = field(default_factory=dict)


def score_frame(
    frame: pd.DataFrame,
    history: TerminalHistory,
    params: FraudParameters,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    rows: np.ndarray | None = None,
    keep_ids: np.ndarray | None = None,
    store_all: bool = False,
    model: ProbabilityModel | None = None,
    select: Callable[[pd.DataFrame], np.ndarray] | None = None,
) -> PageScores:
    """Score the rows of `frame` inside [start, end); earlier rows only feed the windows.

    Rows are returned (in `PageScores.rows`) when flagged, when a rule fired, when their score
    reaches `store_min_score`, when their USD amount is unknown, when their id is in `keep_ids`
    (rows stored by an earlier run, so a rerun overwrites them), or always with `store_all`.
    With a `model` (`ledgerguard fraud train`) whose version carries a learned combination
    (`model.combiner`, `engine.combiner`), the score is that combination of the soft rules'
    signals and its fraud probability p (hard rules still score 1), whatever `model_score`
    says: the version's threshold was chosen for it. A version without one (trained with
    `model_score` noisy_or / model, or before combinations were learnt) follows `model_score`:
    p is the score (`"model"`: hard rules still score 1, soft rules are reasons only) or one
    more signal of the noisy-OR score, of strength p and weight `weight_model` (`"noisy_or"`,
    and `"learned"` for such a version). The model counts as fired (id and reason "model") from
    `model_reason_probability` on (and, when p is the score, wherever it flags). It never flags
    on its own like a hard rule does: only through the score threshold. Except when p is the
    score, a row the rules alone flag stays flagged below the model's threshold
    (`model_keeps_rule_flags`, default).

    `select` (the streaming scorer's) sees the stored rows' verdict columns without words (ids,
    amounts, `score`, `flagged`) and returns the mask of those to return: the rule ids and
    reasons, plain Python per row, are built for those rows only.

    `rows` (the streaming scorer's), instead of [start, end): a mask of the rows to score, in
    the frame's order, which must then be sorted already (by user, time, id).
    """
    if rows is not None:
        if not in_order(frame):
            raise ValueError("score_frame(rows=...) needs a frame sorted by user, time, id")
        frame, inside = frame.reset_index(drop=True), rows
    elif start is None or end is None:
        raise TypeError("score_frame needs start and end, or rows")
    else:
        start_us, end_us = to_us(start), to_us(end)
        frame = sort_frame(frame)
        ts = frame["ts_us"].to_numpy()
        inside = (ts >= start_us) & (ts < end_us)
    # from here on, only the rows inside [start, end): earlier ones have filled the windows
    features = build_features(frame, history, params, rows=inside)
    data = pd.concat([frame if inside.all() else frame[inside], features], axis=1)

    combined = combine(data, rule_signals(data, params), params, model)
    score, flagged, fired = combined.score, combined.flagged, combined.fired
    no_usd = data["usd_units"].to_numpy() < 0

    store = (
        store_all
        | flagged
        | fired.any(axis=1)
        | (score >= params.store_min_score)
        | no_usd
        | (np.isin(data["transaction_id"].to_numpy(), keep_ids) if keep_ids is not None else False)
    )
    stored = np.flatnonzero(store)
    # the verdict columns of the stored rows only (taking the rows of all of `data` first
    # copied some forty feature columns per row)
    rows = pd.DataFrame(
        {
            name: pd.Series(data[name].to_numpy()[stored], dtype=data[name].dtype, copy=False)
            for name in VERDICT_COLUMNS[:6]
        }
        | {"score": score[stored], "flagged": flagged[stored]}
    )
    if select is not None:
        chosen = select(rows)
        stored, rows = stored[chosen], rows[chosen]
    rule_ids, reasons = _words(data, stored, combined, no_usd, params)
    rows["rule_ids"] = rule_ids
    rows["reasons"] = reasons
    rows["model_version"] = model.version if model is not None else None
    return PageScores(
        rows=rows.reset_index(drop=True),
        analysed=len(data),
        flagged=int(flagged.sum()),
        no_usd_rate=int(no_usd.sum()),
        counts_by_rule={
            signal: int(fired[:, column].sum())
            for column, signal in enumerate(_signal_ids(combined.probability))
        },
    )


def _words(
    data: pd.DataFrame,
    stored: np.ndarray,
    combined: Combined,
    no_usd: np.ndarray,
    params: FraudParameters,
) -> tuple[list[str], list[str]]:
    """Rule ids and reasons of the stored rows (a few per cent of the rows: plain Python per
    stored row is fine here, but not per row of the page).

    What a flag no rule explains is said to come from: `combined.parts`; a row flagged only
    because the rules alone flag it names the rules' own score instead.
    """
    fired, parts, flagged = combined.fired, combined.parts, combined.flagged
    kept, rule_parts, rule_score = combined.rules_only, combined.rule_parts, combined.rule_score
    score, probability, threshold = combined.score, combined.probability, combined.threshold
    role = combined.role
    ids: list[list[str]] = [[] for _ in stored]
    reasons: list[list[str]] = [[] for _ in stored]
    for column, rule in enumerate(RULES):
        positions = np.flatnonzero(fired[stored, column])
        if len(positions) == 0:
            continue
        texts = rule.explain(data.iloc[stored[positions]], params)
        for position, text in zip(positions, texts, strict=True):
            ids[position].append(rule.id)
            reasons[position].append(text)
    if probability is not None:
        positions = np.flatnonzero(fired[stored, len(RULES)])
        seen = evidence(data.iloc[stored[positions]], params) if len(positions) else []
        for position, visible in zip(positions.tolist(), seen, strict=True):
            ids[position].append(MODEL_SIGNAL)
            reasons[position].append(
                f"model: fraud probability {probability[stored[position]]:.2f} "
                f"(trained model, {role})" + (f" with {visible}" if visible else "")
            )
    currency = data["currency"].to_numpy()
    # the rows the loop below can say more of: with the storage bar at 0.01 most stored rows
    # are none of these (unflagged, with a USD rate), and a Python step per row adds up
    special = np.flatnonzero(no_usd[stored] | kept[stored] | flagged[stored])
    for position, row in zip(special.tolist(), stored[special].tolist(), strict=True):
        if no_usd[row]:
            day = datetime.fromtimestamp(int(data["ts_us"].iat[row]) // US_PER_SECOND, UTC)
            reasons[position].append(
                f"no ECB USD rate for {currency[row]} on {day.date().isoformat()}: "
                "USD-based rules not applied"
            )
        if kept[row]:
            # the rules' own noisy-OR (hand-set weights), whichever form makes the score
            named = ", ".join(
                f"{rule.id} {rule_parts[row, column]:.2f}"
                for column, rule in enumerate(RULES)
                if rule_parts[row, column] > 0
            )
            reasons[position].append(
                f"rules' own score {rule_score[row]:.4f} >= "
                f"{params.score_threshold} from {named}: flagged by the rules, kept below the "
                f"model's threshold {threshold}"
            )
        elif flagged[row] and not ids[position]:
            named = ", ".join(
                f"{signal} {parts[row, column]:.2f}"
                for column, signal in enumerate(_signal_ids(probability))
                if parts[row, column] > 0
            )
            how = " (learned weights)" if role.startswith("learned") else ""
            reasons[position].append(
                f"score {score[row]:.4f} >= {threshold or params.score_threshold}{how} from {named}"
            )
    return [",".join(item) for item in ids], ["; ".join(item) for item in reasons]
