"""Fraud analysis: a plain library (no Airflow import) for the DAGs, the CLI and the scorer.

Grouped by stage (all entry points take the one `Settings` object):

* `engine/` — frame, features, rules, scoring, model, metrics, fx: pure functions of a frame and
  `FraudParameters` (`ledgerguard.settings.fraud`);
* `imports/` — `importer.import_transactions(settings, path, progress=None)`,
  `importer.import_labels(settings, path)`: all-or-nothing CSV loads into the primary;
* `reports/` — `fraud_report` (the original design's CSV) and
  `compliance.compliance_report(settings, *, day)` (CTR and structuring files of a day);
* `pipeline.analyze_interval(settings, *, start, end, bucket=0, buckets=1, progress=None)`
  -> `AnalysisResult`; `pipeline.merge_reports(settings, *, start, end)` after bucketed runs;
* `reader` (the replica; its terminal tables in `terminal_tables`, the text its rows come as in
  `replica_text`), `store` (the primary), `evaluate` (precision/recall/AP),
  `synthetic` (labelled data sets; `synthetic_files` writes them), `errors`.
"""
