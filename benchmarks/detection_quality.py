"""Detection quality on the realistic generator, on seeds the engine was never tuned on.

For each seed (and terminal density): generate `--days` of Handbook-style traffic, train a model
on all but the last `--scored-days` (as `ledgerguard fraud train` does: time-split validation,
threshold for the target precision, promotion gate), then score the last `--scored-days` with
the rules alone and with rules + model, and print precision / recall / average precision per
pattern and overall (transactions the pipeline would not store count as score 0). JSON on stdout.

    .venv/bin/python benchmarks/detection_quality.py --seeds 101 102 103 > quality.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ledgerguard.fraud.engine.model import FraudModel, train_model
from ledgerguard.fraud.evaluate import evaluate, score_in_memory
from ledgerguard.fraud.synthetic import config_for_rows, generate
from ledgerguard.settings.fraud import FraudParameters


def run(seed: int, rows: int, days: int, scored_days: int, density: float) -> dict[str, object]:
    began = time.monotonic()
    data = generate(config_for_rows(rows, days=days, seed=seed, terminals_per_customer=density))
    start = datetime.combine(
        data.transactions["occurred_at"].min().date(), datetime.min.time(), UTC
    )
    scored_from = start + timedelta(days=days - scored_days)
    end = start + timedelta(days=days)
    early = (data.transactions["occurred_at"] < scored_from).to_numpy()
    with tempfile.TemporaryDirectory() as store:
        params = FraudParameters(model_store_dir=Path(store))
        report = train_model(data.transactions[early], data.labels[early], params=params)
        model = FraudModel.from_store(Path(store), report.version)
        tables = {
            name: evaluate(
                score_in_memory(
                    data.transactions,
                    data.labels,
                    start=scored_from,
                    end=end,
                    params=params,
                    model=with_model,
                )
            )
            for name, with_model in (("rules", None), ("rules+model", model))
        }
    return {
        "seed": seed,
        "terminals_per_customer": density,
        "transactions": len(data.transactions),
        "fraud_share": round(float(data.labels["is_fraud"].mean()), 4),
        "training": {key: value for key, value in report.to_dict().items() if key != "features"},
        **{name: table.round(4).to_dict(orient="records") for name, table in tables.items()},
        "seconds": round(time.monotonic() - began, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[101, 102, 103])
    parser.add_argument("--rows", type=int, default=528_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--scored-days", type=int, default=30)
    parser.add_argument("--terminals-per-customer", type=float, nargs="+", default=[0.5, 2.0])
    args = parser.parse_args()
    results = []
    for density in args.terminals_per_customer:
        for seed in args.seeds:
            result = run(seed, args.rows, args.days, args.scored_days, density)
            overall = {n: result[n][-1] for n in ("rules", "rules+model")}
            print(f"seed {seed} density {density}: {json.dumps(overall)}", file=sys.stderr)
            results.append(result)
    json.dump({"runs": results}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
