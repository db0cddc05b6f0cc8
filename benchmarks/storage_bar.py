"""Average precision and rows stored at several storage bars (`store_min_score`), per seed.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/storage_bar.py 719 0.5 > bar-719-0.5.json

Why: average precision counts a transaction the nightly run does not store as score 0, so the
bar below which an unflagged row is not written to `fraud_scores` truncates the ranking. This
builds `bench detection`'s configuration (`detection.prepare_seed`: the generator's data of
the seed and terminals per customer, a model trained on the first 60 of 90 days, the last 30
days scored, rules alone and rules + model) once, scores it with every row kept, and then
applies each bar as the store does: a row counts with its score when it is flagged, when a rule (or the model's reason)
fired, or when it scores at least the bar; otherwise as 0. (The store also keeps rows without
a USD rate and rows stored by an earlier run; the generator's data has neither, so the figure
at 0.1 is `bench detection`'s to the third decimal.) Prints one JSON object: per scorer and
bar, the AP, the share of payments stored and the share of frauds stored (session 17,
benchmarks/README.md).
"""

from __future__ import annotations

import json
import sys

import numpy as np

from ledgerguard.fraud.engine.metrics import average_precision
from ledgerguard.load.bench.detection import prepare_seed

#: The bars tried, highest first; 0 stores every row.
BARS = (0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.0)
ROWS, DAYS, SCORED_DAYS = 528_000, 90, 30


def main(seed: int, terminals_per_customer: float) -> dict[str, object]:
    report: dict[str, object] = {"seed": seed, "terminals_per_customer": terminals_per_customer}
    with prepare_seed(
        seed, rows=ROWS, days=DAYS, scored_days=SCORED_DAYS, density=terminals_per_customer
    ) as prepared:
        every_row = prepared.params.model_copy(update={"store_min_score": 0.0})
        for name, with_model in (("rules", None), ("rules+model", prepared.model)):
            scored = prepared.score(with_model, every_row)
            fraud = scored["is_fraud"].to_numpy()
            score = scored["score"].to_numpy()
            kept_anyway = scored["flagged"].to_numpy() | (scored["rule_ids"].to_numpy() != "")
            per_bar = {}
            for bar in BARS:
                kept = kept_anyway | (score >= bar) if bar > 0 else np.ones(len(score), bool)
                per_bar[str(bar)] = {
                    "average_precision": round(
                        average_precision(fraud, np.where(kept, score, 0.0)), 4
                    ),
                    "stored_share": round(float(kept.mean()), 4),
                    "frauds_stored_share": round(float(kept[fraud == 1].mean()), 4),
                }
            report[name] = per_bar
    return report


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: storage_bar.py SEED TERMINALS_PER_CUSTOMER")
    print(json.dumps(main(int(sys.argv[1]), float(sys.argv[2]))))
