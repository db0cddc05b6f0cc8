"""The servers: local MariaDB processes, provisioning, replication wiring, failover, checksums.

Administrative statements (point a replica at a source, start/stop it, server options) live in
`replication`; the queries that only read replication state are in `ledgerguard.db.dialect`.
The replication heartbeat (`heartbeat`) is installed here on `cluster up` and after a failover.
"""
