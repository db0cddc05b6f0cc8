"""Database access, the one home of engines and dialect SQL.

* `engines`: every engine (async for the API, sync without a pool for batch jobs, CLI, checks);
* `dialect`: MariaDB/MySQL flavour detection and every query that reads replication state;
* `tables` (the schema the code queries) and `migrations/` + `migrate` (Alembic, primary only);
* `transactions`, `api_keys`, `fraud_results`: the SQL of each table; `writer`: the API's
  group-commit writer; `consistency`: read-your-writes on the replica (GTID waits and gaps).

`db` imports nothing above it (not `cluster`), so the cluster, the API and the batch jobs all
build on it.
"""
