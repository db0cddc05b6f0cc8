"""The scoring engine: pure functions of a frame of transactions and `FraudParameters`.

`frame` (transactions in the import format -> the engine's input frame), `features` (the
feature catalogue and `build_features`, over `windows`, `customer_features`,
`terminal_history` (built from `terminal_days`' tables) and `terminal_features`), `survival` (how long terminal compromises last),
`rules` (each rule's flag and reason), `model_evidence` (the features named beside a model's
probability), `scoring` (rules + optional model -> one score per row;
the model is any `ProbabilityModel`), `model` (the trained model as the scorer uses it),
`fitting` (training a model version: time split, threshold), `model_card` (what a version
records and reports, the promotion gate), `metrics`
(average precision), `fx` (USD conversion of amount columns). No database access here: the
nightly pipeline, the evaluation and the streaming scorer feed frames in and store what comes
out.
"""
