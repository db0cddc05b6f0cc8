"""The learned score combination: the noisy-OR's weights fitted to the platform's labels.

With a trained model, the score has to merge two kinds of evidence: the soft rules (each a
strength in [0, 1], 1 when it fired) and the model's fraud probability p. Round 4 of #14
measured the hand-set noisy-OR, `score = 1 - prod(1 - w_i x_i)`, and found its fault in the
weights, not its form: a fired `terminal_risk` (hand-set weight 0.7) scores at least 0.7
whatever the model says, while on the days after a compromise ended (which the labels do not
show yet) most of those rows are legitimate — the flag threshold landed on that plateau in 5 of
6 held-out runs.

So the weights are learnt, by **stacking**: fitted on out-of-time predictions of the model —
exactly what the pooled validation weeks of `model_threshold_windows` are (each week scored by
a model trained only on the days before it) — by maximum likelihood of the noisy-OR read as a
probability model (each signal i on its own makes a row fraud with probability w_i x_i, a
`leak` covers fraud no signal sees), under bounds 0 <= w <= 1. Why this form and not the
others tried:

* **a logistic regression** on the rules' signals and the model's logit (tried first, round 5):
  it explains away — a rule that is always right gets little weight when the model already
  gives its rows a high p in the validation weeks, so out of time, where the model misses some
  of them, the rule no longer flags them (dev seed 15: structuring recall 1.0 -> 0.84, and the
  model's logit weighted 0.14 because the early weeks' models were weak) and its average
  precision fell below the hand-set noisy-OR's (0.770 against 0.783). A noisy-OR cannot lower
  a score: a signal adds evidence or nothing, so a rule that was right on every row it fired
  on cannot be turned against the model's ranking (structuring's weight came out at 1.0 on
  every dev seed);
* **p alone** loses the rules' ranking of rare, clear-cut patterns (round 4);
* **the rules' strengths as features of the tree model** made it worse (round 4).

What the learnt weights buy: each is "how often this signal alone meant fraud on this
platform's labels" — readable in the card next to the hand-set defaults; six numbers fitted on
~10^5 rows do not overfit; the score stays monotone in every signal, hard rules still flag with
score 1, and the rules' reasons still explain every flag. Applying it is the same product as
the hand-set noisy-OR (no scikit-learn or SciPy where it scores; measured: the same CPU).

**A rule's firing and its near misses are separate inputs** (round 6). With one weight per
rule (round 5) the weight was learnt from the near misses too, and where the model already finds
a rule's frauds the likelihood is flat in that weight while the near misses on legitimate rows
pull it down: on dev seed 13 `velocity` came out at 0.003 (every burst it fired on was fraud),
so its rows were flagged by the model's p alone. Now each soft rule gives two inputs, "fired"
(0/1) and its near-miss strength (0 where it fired, the ramp below its threshold otherwise,
`<rule>:near_miss`), each with its own weight, so the near misses no longer dilute what a
firing means. Where the likelihood is flat (the model already explains those rows) a weight
stays where the fit started, so the fired weights start at the rule's own precision on the
fitting rows (what "fired" alone would mean) and the near misses at 0. A version fitted before
this (one input per rule, its card's inputs say so) is scored as it was fitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Name of the model's input.
MODEL_INPUT = "model"
#: Suffix of a rule's near-miss input (the rule's own name is its "fired" input).
NEAR_MISS_SUFFIX = ":near_miss"


def input_names(rule_ids: tuple[str, ...], *, split: bool = True) -> tuple[str, ...]:
    """The combiner's inputs for these soft rules, in the order of `inputs`: each rule's
    "fired", each rule's near miss, the model (`split=False`: one strength per rule, round 5)."""
    if not split:
        return (*rule_ids, MODEL_INPUT)
    return (*rule_ids, *(f"{rule}{NEAR_MISS_SUFFIX}" for rule in rule_ids), MODEL_INPUT)


def inputs(strength: np.ndarray, probability: np.ndarray, *, split: bool = True) -> np.ndarray:
    """Rows x inputs from each soft rule's strength (rows x rules, 1 where it fired) and p."""
    if not split:
        return np.column_stack([strength, probability])
    fired = strength >= 1.0
    return np.column_stack([fired, np.where(fired, 0.0, strength), probability])


def _noisy_or(x: np.ndarray, weights: np.ndarray, leak: float) -> np.ndarray:
    """1 - (1 - leak) prod(1 - w_i x_i): unrounded."""
    return 1.0 - (1.0 - leak) * np.prod(1.0 - x * weights, axis=1)


@dataclass(frozen=True)
class ScoreCombiner:
    """A fitted combination: score = 1 - (1 - leak) prod(1 - w_i x_i), 4 decimals."""

    inputs: tuple[str, ...]
    weights: tuple[float, ...]
    leak: float
    #: Rows (and frauds among them) it was fitted on: the pooled validation windows.
    rows: int = 0
    frauds: int = 0

    @property
    def split(self) -> bool:
        """Whether a rule's firing and its near misses have their own weights (round 6)."""
        return any(name.endswith(NEAR_MISS_SUFFIX) for name in self.inputs)

    @classmethod
    def fit(
        cls,
        rule_ids: tuple[str, ...],
        strength: np.ndarray,
        probability: np.ndarray,
        is_fraud: np.ndarray,
    ) -> ScoreCombiner:
        """Maximum likelihood on rows whose `probability` comes from a model that had not seen
        them (SciPy's L-BFGS-B within the bounds [0, 1], with the exact gradient).

        Starts each "fired" weight at the rule's precision on these rows, each near miss at 0
        and the model at 0.5: along a direction the likelihood does not see (a rule whose
        frauds the model already finds) the weight keeps what a firing means on its own."""
        from scipy.optimize import minimize

        x = inputs(strength, probability)
        y = is_fraud.astype(float)
        fired = x[:, : len(rule_ids)] > 0
        precision = (fired & (y[:, None] > 0)).sum(axis=0) / np.maximum(fired.sum(axis=0), 1)
        start = np.concatenate(
            [[max(float(y.mean()) / 10, 1e-4)], precision, np.zeros(len(rule_ids)), [0.5]]
        )
        tiny = 1e-12

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            leak, weights = theta[0], theta[1:]
            factors = np.clip(1.0 - x * weights, tiny, None)  # rows x inputs
            q = np.clip((1.0 - leak) * np.prod(factors, axis=1), tiny, 1 - tiny)  # P(legit)
            nll = -float(np.sum(y * np.log1p(-q) + (1 - y) * np.log(q)))
            # d nll / d log q, then d log q / d theta
            outer = -(y * (-q / (1 - q)) + (1 - y))
            gradient_weights = outer @ (-x / factors)
            gradient_leak = float(np.sum(outer) * (-1.0 / max(1.0 - leak, tiny)))
            return nll, np.concatenate([[gradient_leak], gradient_weights])

        found = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * len(start))
        return cls(
            inputs=input_names(rule_ids),
            weights=tuple(float(w) for w in found.x[1:]),
            leak=float(found.x[0]),
            rows=len(x),
            frauds=int(is_fraud.sum()),
        )

    def score(self, strength: np.ndarray, probability: np.ndarray) -> np.ndarray:
        """The combined score per row, rounded half-even to 4 decimals like every score."""
        x = inputs(strength, probability, split=self.split)
        return np.round(_noisy_or(x, np.asarray(self.weights), self.leak), 4)

    def parts(self, strength: np.ndarray, probability: np.ndarray) -> np.ndarray:
        """Rows x (rules, model): what each rule (fired or near miss) and the model put in,
        w_i x_i, for the reason of a flag no rule explains."""
        x = inputs(strength, probability, split=self.split) * np.asarray(self.weights)
        rules = strength.shape[1]
        if not self.split:
            return x
        return np.column_stack([x[:, :rules] + x[:, rules : 2 * rules], x[:, -1]])

    def to_card(self) -> dict[str, Any]:
        """What the model card records: the weight of each input and the leak."""
        return {
            "method": "noisy-OR weights by maximum likelihood on out-of-time validation windows"
            + (", a rule's firing and its near misses weighed apart" if self.split else ""),
            "weights": dict(zip(self.inputs, self.weights, strict=True)),
            "leak": self.leak,
            "rows": self.rows,
            "frauds": self.frauds,
        }

    @classmethod
    def from_card(cls, entry: dict[str, Any], rule_ids: tuple[str, ...]) -> ScoreCombiner:
        """The combiner a card recorded; `ValueError` when its inputs are not today's rules."""
        weights = dict(entry["weights"])
        # a version fitted before round 6 has one input per rule, and is scored so
        split = any(name.endswith(NEAR_MISS_SUFFIX) for name in weights)
        expected = input_names(rule_ids, split=split)
        if set(weights) != set(expected):  # the card's keys are sorted, not ordered
            raise ValueError(
                f"its score combination was fitted on inputs {sorted(weights)}, the rules "
                f"now give {sorted(expected)}: train it again"
            )
        return cls(
            inputs=expected,
            weights=tuple(float(weights[name]) for name in expected),
            leak=float(entry["leak"]),
            rows=int(entry.get("rows", 0)),
            frauds=int(entry.get("frauds", 0)),
        )
