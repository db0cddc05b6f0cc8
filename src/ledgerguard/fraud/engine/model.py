"""A trained fraud model as the scorer uses it: `FraudModel`, a fraud probability per row.

A version of the model store (`fraud.model_store`: the fitted scikit-learn model in
`model.joblib`, its card in `card.json`) is read with its card's features, flag threshold and
learned score combination (`FraudModel.from_store`); `FraudModel.load` also reads an older
single-file model (joblib: the model, its feature names, the parameters the features were
built with and the evaluation). With a promoted version or `LEDGERGUARD_FRAUD__MODEL_PATH`, the
nightly analysis loads it once per run and `scoring.score_frame` adds its probability as one
more signal of the score; the streaming scorer and the backtest use it the same way.

Training a version is `engine.fitting`'s: scoring needs none of it. `TrainingError` lives
here all the same, as reading a model raises it too (`engine.fitting` imports this module, not
the reverse). The store pickles only scikit-learn's model (and the older file a dict of it
with plain data), never a class of this module, so a stored version does not depend on where
these classes live.

Needs the `ml` extra (`pip install -e .[ml]`: scikit-learn) to read a model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ledgerguard.fraud.engine.combiner import ScoreCombiner
from ledgerguard.fraud.engine.scoring import SOFT_RULE_IDS
from ledgerguard.fraud.engine.terminal_features import EARLY_ACTIVE_PROBABILITY
from ledgerguard.fraud.errors import FraudError
from ledgerguard.fraud.model_store import CARD_FILE, model_path
from ledgerguard.fraud.model_store import card as read_card


class TrainingError(FraudError, ValueError):
    """The labelled data cannot train a model (no frauds, too few days, no scikit-learn)."""


#: Numeric columns of `build_features` that only the rules read. `terminal_early_active_
#: probability` (`terminal_risk`'s early trigger) is 1 wherever too few compromises had ended
#: to learn their lengths, as in a training set's first weeks, and as a model feature it cost
#: average precision (-0.004 to -0.009 on dev seeds 12 and 13 at 0.5 terminals per customer
#: with 30 % early labels, session 20); the model reads the early confirmations' count and the
#: labelled run's own probability instead.
RULE_ONLY_COLUMNS = frozenset({EARLY_ACTIVE_PROBABILITY})


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The numeric feature columns `build_features` produced for the model, in a stable
    order (`RULE_ONLY_COLUMNS` left out)."""
    return sorted(
        c
        for c in frame.columns
        if pd.api.types.is_numeric_dtype(frame[c]) and c not in RULE_ONLY_COLUMNS
    )


def load_model(path: Path) -> dict[str, Any]:
    """A model file written by `train_model` (model, features, params, report)."""
    import joblib

    return dict(joblib.load(path))


class FraudModel:
    """A trained model as the scorer uses it: fraud probability per row of a feature frame."""

    def __init__(
        self,
        model: Any,
        features: list[str],
        *,
        threshold: float | None = None,
        version: str | None = None,
        combiner: ScoreCombiner | None = None,
    ) -> None:
        self._model = model
        self._threads: Any = None  # threadpoolctl's controller, made on the first prediction
        self.features = features
        #: Flag threshold chosen on validation data (None: `score_threshold` applies).
        self.threshold = threshold
        #: Store version recorded on each verdict (None for a model file outside the store).
        self.version = version
        #: The version's learned score combination (None: `model_score` decides).
        self.combiner = combiner

    @classmethod
    def from_store(cls, store: Path, version: str) -> FraudModel:
        """A stored version with its card's features and threshold."""
        import joblib

        try:
            card = read_card(store, version)
            model = joblib.load(model_path(store, version))
            learned = card.get("combiner")
            combiner = ScoreCombiner.from_card(learned, SOFT_RULE_IDS) if learned else None
        except ImportError as exc:
            raise TrainingError(
                "reading a model needs scikit-learn: pip install -e '.[ml]'"
            ) from exc
        except (OSError, ValueError, KeyError, EOFError) as exc:
            raise TrainingError(f"model version {version} in {store}: {exc}") from exc
        return cls(
            model,
            list(card["features"]),
            threshold=card["threshold"],
            version=version,
            combiner=combiner,
        )

    @classmethod
    def load(cls, path: Path) -> FraudModel:
        """Read `path` (a store version's `model.joblib`, or an older single-file model).

        `TrainingError` when it is missing, unreadable or scikit-learn is absent.
        """
        if (path.parent / CARD_FILE).is_file():
            return cls.from_store(path.parent.parent, path.parent.name)
        try:
            saved = load_model(path)
            return cls(saved["model"], list(saved["features"]))
        except ImportError as exc:
            raise TrainingError(
                f"{path}: reading a model needs scikit-learn: pip install -e '.[ml]'"
            ) from exc
        except (OSError, KeyError, ValueError, EOFError) as exc:
            raise TrainingError(
                f"{path}: not a model written by `ledgerguard fraud train`: {exc}"
            ) from exc

    def probability(self, data: pd.DataFrame) -> np.ndarray:
        """P(fraud) per row; the frame must hold the features the model was trained on."""
        missing = [name for name in self.features if name not in data]
        if missing:
            raise TrainingError(
                f"the model needs features the current parameters do not build: {missing} "
                "(train it again with today's LEDGERGUARD_FRAUD__* windows)"
            )
        if len(data) == 0:  # a page with only lookback rows (scikit-learn refuses 0 rows)
            return np.zeros(0)
        x = data[self.features].to_numpy(dtype=float)
        with self._one_thread():
            return self._model.predict_proba(x)[:, 1]

    def _one_thread(self) -> Any:
        """The prediction on the calling thread alone (OpenMP limited to 1 thread there).

        scikit-learn splits every tree's prediction over all cores and waits for the slowest
        at each of the ~100 trees: on a 2-core machine busy with other work, 2 threads took
        1.7-2x the time of one (a 400k-row page: 2.4 s against 1.4 s). The nightly analysis
        scores pages on several threads instead (`page_threads`), which keeps both cores busy
        without a barrier per tree. Rows are predicted independently, so the probabilities are
        the same. The limit is per thread (OpenMP's own), so concurrent pages do not interfere.
        """
        if self._threads is None:
            from threadpoolctl import ThreadpoolController

            self._threads = ThreadpoolController()  # finding the libraries takes ~5 ms: once
        return self._threads.limit(limits=1, user_api="openmp")
