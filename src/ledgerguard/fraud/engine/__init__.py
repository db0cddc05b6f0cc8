"""The scoring engine: pure functions of a frame of transactions and `FraudParameters`.

`features` (the feature catalogue: windows per customer and terminal), `rules` (each rule's flag
and reason), `scoring` (rules + optional model -> one score per row), `model` (the trained
model), `fx` (USD conversion of amounts). No database access here: the nightly pipeline, the
evaluation and the streaming scorer feed frames in and store what comes out.
"""
