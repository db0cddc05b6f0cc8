"""The fraud rules: small units with an id, a description, parameters and a reason.

Each rule reads feature columns (see `ledgerguard.fraud.engine.features`) and returns, per row, a
*strength* in [0, 1] and whether it *fired*. A fired rule has strength 1 (`terminal_risk`: from
the least strength at which it still flags on its own up to 1 with its risk, see
`fired_floor`); below its threshold a rule may still contribute a small strength (a ramp from
"nothing unusual" to the threshold, cubed so that only values close to the threshold count,
and at most `NEAR_MISS`), which lets the score combine several near misses and ranks
transactions for average precision. `explain` turns fired rows into the
reason strings written to `fraud_scores` and the details report.

`large_amount` is *hard*: it flags on its own whatever the score. The others flag through the
score (their weights default above the score threshold, so each can flag alone too).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd

from ledgerguard.fraud.engine.customer_features import anomaly_bar
from ledgerguard.fraud.engine.terminal_features import (
    ACTIVE_PROBABILITY,
    COMPROMISE_WORDS,
    EARLY_ACTIVE_PROBABILITY,
    EARLY_FRAUD_CUSTOMERS,
)
from ledgerguard.fraud.engine.windows import usd_threshold_units
from ledgerguard.money import display_amount
from ledgerguard.settings.fraud import FraudParameters

#: Largest strength of a rule that did not fire: with weights <= 1 and a score threshold >= 0.5 a
#: near miss never flags on its own, two or three strong near misses together do.
NEAR_MISS = 0.5


@dataclass(frozen=True)
class RuleOutcome:
    strength: np.ndarray  # float64 in [0, 1]
    fired: np.ndarray  # bool


@dataclass(frozen=True)
class Rule:
    """A rule: `evaluate` scores every row, `explain` words the rows where it fired."""

    id: str
    description: str
    hard: bool
    evaluate: Callable[[pd.DataFrame, FraudParameters], RuleOutcome]
    explain: Callable[[pd.DataFrame, FraudParameters], list[str]]


def ramp(value: np.ndarray, zero_at: float | np.ndarray, fire_at: float | np.ndarray) -> np.ndarray:
    """0 at or below `zero_at`, rising (cubed) to 1 at `fire_at` (numbers or per-row
    arrays); NaN counts as 0."""
    scaled = np.clip(
        (np.where(np.isnan(value), zero_at, value) - zero_at) / (fire_at - zero_at), 0, 1
    )
    return scaled**3


def _outcome(fired: np.ndarray, below: np.ndarray) -> RuleOutcome:
    """Strength 1 where fired; below the threshold at most `NEAR_MISS` (see module docstring)."""
    return RuleOutcome(strength=np.where(fired, 1.0, NEAR_MISS * below), fired=fired)


def _usd(value: float) -> str:
    return f"{value:,.2f}"


# --- large_amount ---------------------------------------------------------------------------


def _large_amount(data: pd.DataFrame, params: FraudParameters) -> RuleOutcome:
    # Integer 10^-4 USD on both sides: 10,000.00 is not above the line, 10,000.0001 is.
    fired = data["usd_units"].to_numpy() > usd_threshold_units(params.large_amount_usd)
    return _outcome(fired, np.zeros(len(data)))


def _explain_large_amount(data: pd.DataFrame, params: FraudParameters) -> list[str]:
    """The amount as paid and, for another currency, its USD value at the ECB rate of its day,
    written like every other amount in the reasons (thousands separated, the currency's
    decimals): `12,000.00 EUR (13,100.47 USD at the ECB rate of its day) is above 10,000.00 USD`.
    """
    line = f"{params.large_amount_usd:,.2f}"
    texts = []
    for units, usd_units, currency in zip(
        data["amount_units"].to_numpy(),
        data["usd_units"].to_numpy(),
        data["currency"].to_numpy(),
        strict=True,
    ):
        usd = display_amount(Decimal(int(usd_units)).scaleb(-4), "USD")
        paid = usd
        if currency != "USD":
            amount = display_amount(Decimal(int(units)).scaleb(-4), str(currency))
            paid = f"{amount} ({usd} at the ECB rate of its day)"
        texts.append(f"large_amount: {paid} is above {line} USD")
    return texts


# --- structuring ----------------------------------------------------------------------------


def _structuring(data: pd.DataFrame, params: FraudParameters) -> RuleOutcome:
    fired = data["structuring_group_nb_tx"].to_numpy() >= params.structuring_min_count
    return _outcome(fired, np.zeros(len(data)))


def _explain_structuring(data: pd.DataFrame, params: FraudParameters) -> list[str]:
    floor, line = params.structuring_floor_usd, params.large_amount_usd
    return [
        f"structuring: {n} transactions of {_usd(float(floor))}-{_usd(float(line))} USD within "
        f"{hours:.1f} h total {_usd(total)} USD, above {_usd(float(line))} USD"
        for n, total, hours in zip(
            data["structuring_group_nb_tx"],
            data["structuring_group_usd"],
            data["structuring_group_hours"],
            strict=True,
        )
    ]


# --- velocity (card testing) --------------------------------------------------------------


def _velocity(data: pd.DataFrame, params: FraudParameters) -> RuleOutcome:
    fired = data["velocity_burst_nb_tx"].to_numpy() >= params.velocity_min_count
    below = ramp(data["velocity_nb_tx"].to_numpy().astype(float), 1, params.velocity_min_count)
    return _outcome(fired, below)


def _explain_velocity(data: pd.DataFrame, params: FraudParameters) -> list[str]:
    small = _usd(float(params.velocity_small_amount_usd))
    return [
        f"velocity: {n} charges of at most {small} USD within {minutes:.0f} min "
        f"on {terminals} terminal{'s' if terminals != 1 else ''}"
        for n, terminals, minutes in zip(
            data["velocity_burst_nb_tx"],
            data["velocity_burst_nb_terminals"],
            data["velocity_burst_minutes"],
            strict=True,
        )
    ]


# --- spending_anomaly ---------------------------------------------------------------------


def _spending_anomaly(data: pd.DataFrame, params: FraudParameters) -> RuleOutcome:
    ratio, bar = anomaly_bar(data, params)
    fired = np.nan_to_num(ratio) >= bar
    return _outcome(fired, ramp(ratio, (1 + bar) / 2, bar))


def _explain_spending_anomaly(data: pd.DataFrame, params: FraudParameters) -> list[str]:
    a, r = params.anomaly_window_days, params.anomaly_repeat_days
    _, bar = anomaly_bar(data, params)
    texts = []
    for usd, ratio, median, n, repeats, lowered in zip(
        data["amount_usd"],
        data["amount_to_median_ratio"],
        data[f"customer_median_amount_{a}d"],
        data[f"customer_hist_nb_tx_{a}d"],
        data[f"customer_recent_anomalies_{r}d"],
        bar < params.anomaly_ratio,
        strict=True,
    ):
        text = (
            f"spending_anomaly: {_usd(usd)} USD is {ratio:.1f}x the user's {a}-day median of "
            f"{_usd(median)} USD ({n} earlier transactions)"
        )
        if lowered and ratio < params.anomaly_ratio:
            text += (
                f", after {repeats} payments of the last {r} days at "
                f"{params.anomaly_ratio:g}x or more"
            )
        texts.append(text)
    return texts


# --- terminal_risk ------------------------------------------------------------------------


def _terminal_window(data: pd.DataFrame, params: FraudParameters) -> tuple[np.ndarray, ...]:
    days = params.terminal_risk_window_days
    n_fraud = data[f"terminal_nb_fraud_{days}d"].to_numpy()
    n_tx = data[f"terminal_nb_tx_{days}d"].to_numpy()
    # ... and only while the fraud is ongoing as far as the labels tell: the latest labelled
    # day with payments on the terminal had fraud.
    ongoing = data["terminal_fraud_run_days"].to_numpy() > 0
    enough = (n_fraud >= params.terminal_min_frauds) & ongoing
    # ... times the chance that the run still goes on at the transaction's day, from how long
    # compromises have lasted here (`engine.survival`; 1 when too little was learnt)
    active = data[ACTIVE_PROBABILITY].to_numpy(dtype=float)
    # the share of fraud: the recent (decayed) one, or the current run's own when higher, as
    # at a compromise's start, when the clean days before it still weigh in the decayed share
    # (round 9b: the rule rose a day or two after the first labels, the run's share at once)
    share = data["terminal_recent_risk"].to_numpy()
    if params.terminal_risk_run_share:
        share = np.maximum(share, data["terminal_run_fraud_share"].to_numpy())
    return n_fraud, n_tx, np.where(enough, share * active, 0.0)


def _early_risk(data: pd.DataFrame, params: FraudParameters) -> np.ndarray:
    """P(fraud) from early confirmations: on rows with at least
    `terminal_early_fraud_min_customers` other customers' fraud at the terminal confirmed
    after the label horizon, the chance that the compromise they show still goes on
    (`EARLY_ACTIVE_PROBABILITY`); 0 elsewhere, and everywhere when the setting is 0."""
    least = params.terminal_early_fraud_min_customers
    if least == 0:
        return np.zeros(len(data))
    confirmed = data[EARLY_FRAUD_CUSTOMERS].to_numpy() >= least
    return np.where(confirmed, data[EARLY_ACTIVE_PROBABILITY].to_numpy(dtype=float), 0.0)


def _terminal_risk(data: pd.DataFrame, params: FraudParameters) -> RuleOutcome:
    # The recent (decayed) share, not the plain window share: once the labels show clean days
    # after a compromise, the risk falls within about one half-life instead of staying high
    # until the last fraud leaves the window (42 % of the old rule's alerts came from there).
    _, _, risk = _terminal_window(data, params)
    # fraud confirmed before the label delay by other customers of the terminal: a
    # compromise seen at once, as likely still going on as its learnt lengths say
    risk = np.maximum(risk, _early_risk(data, params))
    bar = params.terminal_risk_threshold
    fired = risk >= bar
    outcome = _outcome(fired, ramp(risk, 0.0, bar))
    if not params.terminal_risk_strength_by_risk or bar >= 1.0:
        return outcome
    # Fired, the risk is P(fraud) (the run's share times P(the compromise still goes on)), and
    # where compromises last different lengths it ranges from the bar to 1: a flag at 0.55 is
    # wrong almost half the time, one at 0.95 seldom. The strength keeps that order (session
    # 15: the rules' own AP +0.006..+0.039 with compromises of 14-56 days, +0.001..+0.002 on
    # fixed ones) from the floor at which the rule still flags alone, so no flag changes.
    floor = fired_floor(params, "terminal_risk")
    above = np.clip((risk - bar) / (1.0 - bar), 0.0, 1.0)
    strength = np.where(fired, floor + (1.0 - floor) * above, outcome.strength)
    return RuleOutcome(strength=strength, fired=fired)


def fired_floor(params: FraudParameters, rule_id: str) -> float:
    """The least strength of a fired soft rule that still flags on its own: weight x strength
    at `score_threshold` (the noisy-OR of the rules alone, `scoring.RuleSignals.flagged`; the
    1e-9 keeps the product at the threshold after rounding). 1 where even strength 1 does not
    reach it (a weight below the threshold: the rule never flagged alone, and still does not)."""
    weight = params.rule_weight(rule_id)
    if weight < params.score_threshold:  # score_threshold > 0, so a weight of 0 lands here
        return 1.0
    return min(1.0, params.score_threshold / weight + 1e-9)


def _explain_terminal_risk(data: pd.DataFrame, params: FraudParameters) -> list[str]:
    """The labelled window's case, or the early confirmations' where those fired the rule
    (a row both fire on gets both)."""
    early = _early_risk(data, params)
    window = _explain_terminal_window(data, params)
    delay = params.label_delay_days
    texts: list[str] = []
    for text, risk, terminal, customers in zip(
        window, early, data["terminal_id"], data[EARLY_FRAUD_CUSTOMERS], strict=True
    ):
        if risk >= params.terminal_risk_threshold:
            known = (
                f"terminal_risk: {customers} other customers' payments at terminal {terminal} in "
                f"the last {delay} days already confirmed as fraud (before the usual {delay}-day "
                "label delay: analyst decisions or early chargebacks)"
            )
            if risk < 1.0:
                known += f", a compromise still going on today with probability {risk:.0%}"
            text = known if text is None else f"{known}; {text.removeprefix('terminal_risk: ')}"
        texts.append(text or "")
    return texts


def _explain_terminal_window(data: pd.DataFrame, params: FraudParameters) -> list[str | None]:
    """What the labelled days up to the horizon say, where they fire the rule (else None)."""
    n_fraud, n_tx, risk = _terminal_window(data, params)
    fired = risk >= params.terminal_risk_threshold
    delay, window = params.label_delay_days, params.terminal_risk_window_days
    customers = params.terminal_compromise_min_customers
    who = f" ({customers}+ customers defrauded at the terminal)" if customers > 1 else ""
    texts: list[str | None] = []
    for fire, terminal, frauds, total, share, run_share, since, run, active, lengths in zip(
        fired,
        data["terminal_id"],
        n_fraud,
        n_tx,
        data["terminal_recent_risk"],
        data["terminal_run_fraud_share"],
        data["terminal_days_since_fraud"],
        data["terminal_fraud_run_days"],
        data[ACTIVE_PROBABILITY],
        data[COMPROMISE_WORDS],
        strict=True,
    ):
        if not fire:
            texts.append(None)
            continue
        ongoing = (
            f"fraud on every labelled day of the last {run} day{'s' if run != 1 else ''}"
            if run
            else f"last confirmed fraud {since} days before that"
        )
        if run and params.terminal_risk_run_share:
            ongoing += f", {run_share:.0%} of its payments on them"
        # no words: nothing was learnt. None in the feature array, but NaN in the frame when
        # some rows have words: pandas 3 infers its `str` dtype for strings with None, and
        # that dtype's missing value is NaN (traced in session 15)
        if isinstance(lengths, str) and run:
            ongoing += (
                f"; terminal compromises on this platform{who} have lasted {lengths}, so this "
                f"one is still going on today with probability {active:.0%}"
            )
        texts.append(
            f"terminal_risk: {frauds} of terminal {terminal}'s {total} payments in the {window} "
            f"days up to {delay} days before this one confirmed as fraud (labels known by "
            f"then; {share:.0%} with the latest days weighted most); {ongoing}"
        )
    return texts


RULES: tuple[Rule, ...] = (
    Rule(
        id="large_amount",
        description="USD-equivalent amount (ECB rate of the transaction date) above the CTR line",
        hard=True,
        evaluate=_large_amount,
        explain=_explain_large_amount,
    ),
    Rule(
        id="structuring",
        description="several near-threshold amounts of one user within a window, together "
        "above the CTR line (CTR evasion)",
        hard=False,
        evaluate=_structuring,
        explain=_explain_structuring,
    ),
    Rule(
        id="velocity",
        description="a burst of small charges by one user within minutes (card testing)",
        hard=False,
        evaluate=_velocity,
        explain=_explain_velocity,
    ),
    Rule(
        id="spending_anomaly",
        description="amount far above the user's own trailing median",
        hard=False,
        evaluate=_spending_anomaly,
        explain=_explain_spending_anomaly,
    ),
    Rule(
        id="terminal_risk",
        description="terminal with a high share of confirmed fraud (labels up to the label horizon)",
        hard=False,
        evaluate=_terminal_risk,
        explain=_explain_terminal_risk,
    ),
)

RULE_IDS: tuple[str, ...] = tuple(rule.id for rule in RULES)
