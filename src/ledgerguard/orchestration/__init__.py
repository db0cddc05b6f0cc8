"""Airflow for LedgerGuard: the DAGs' task bodies and a local Airflow to run them.

* `tasks`: what each DAG task does, as plain functions (no Airflow import), so `dags/` stays a
  thin wiring layer and the work is testable without a scheduler;
* `config`: the local Airflow's home, environment and login (`AIRFLOW_HOME` under the state dir);
* `process`: start, stop and check `airflow standalone` as a managed background process;
* `client`: the Airflow REST API v2 (token, DAGs, runs, task states);
* `runs`: run a DAG for one UTC day (trigger or rerun, unpause, wait).

Nothing here imports `airflow`: the package works (and its tests run) without Airflow installed.
"""
