"""The streaming scorer: every committed transaction scored from the replica's binary log.

`binlog` (row events of `transactions` / `fraud_labels`, positioned by GTID), `position` (GTID
positions), `state` (per-user windows and terminal counts kept in memory, scored by the fraud
engine's own `score_frame`), `checkpoint` (verdicts and the GTID position written in one
transaction on the primary), `alerts` (the signed webhook, retries, dead letters), `metrics`,
`scorer` (the loop tying them together) and `process` (running it in the background).
"""
