"""The streaming scorer: every committed transaction scored from the replica's binary log.

`binlog` (row events of `transactions` / `fraud_labels`, positioned by GTID), `position` (GTID
positions), `state` (per-user windows kept in memory, scored by the fraud engine's own
`score_frame`; their row layout in `rows`, the revision window in `revision`, the partition of
the users in `partition`), `terminal_counts` (per-terminal-day counts of every user),
`checkpoint` (verdicts and the GTID position written in one transaction on the primary),
`alerts` (the signed webhook, retries, dead letters), `metrics`, `scorer` (the loop tying them
together; `batch` splits what a batch of binlog transactions brings, `replica` is its
connection to the replica, `reporter` its lag, CPU and connection once a second, `status` the
status file it writes) and `process` (running it in the background).
"""
