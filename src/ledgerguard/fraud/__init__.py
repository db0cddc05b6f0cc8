"""Fraud analysis engine: a plain library (no Airflow import) for the DAGs and the CLI.

Entry points (all take the one `Settings` object):

* `pipeline.analyze_interval(settings, *, start, end, bucket=0, buckets=1, progress=None)`
  -> `AnalysisResult`; `pipeline.merge_reports(settings, *, start, end)` after bucketed runs.
* `imports.import_transactions(settings, path, progress=None)`,
  `imports.import_labels(settings, path)`: all-or-nothing CSV loads into the primary.
* `compliance.compliance_report(settings, *, day)`: CTR and structuring files of a day.
* `synthetic.generate(config)` / `write_dataset(...)`: a labelled synthetic data set.
* `evaluate.evaluate(frame)`, `score_in_memory(...)`, `scores_from_database(...)`.
* `bench.bench_analysis(settings, rows)`.

Modules: `params` (FraudParameters), `features` (catalogue), `rules`, `scoring`, `fx`,
`reader` (replica), `store` (primary), `reports`, `errors`.
"""
