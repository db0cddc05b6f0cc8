"""Observability of the local stack: Prometheus, mysqld-exporters, the whole-stack status.

Modules, one concern each:

* `config`: renders `deploy/prometheus/prometheus.yml.tmpl` and the exporters' credentials under
  `<state dir>/monitoring`;
* `process`: one local HTTP program (start/stop/probe, own process group, pid and log files);
* `local`: `LocalMonitoring(settings).up() / down() / status()`;
* `stack`: `stack_status(settings)`, everything at a glance for `ledgerguard status`;
* `expressions`: the PromQL of the Grafana dashboards, for checking against a real Prometheus
  and for the web app's operations page; the dashboards themselves are package data in
  `dashboards/` (so a wheel install has them), and Grafana is provisioned from there.

The replication heartbeat (table and writer event) belongs to the cluster, which installs it on
`cluster up` and after a failover: `ledgerguard.cluster.heartbeat`; `stack` only reads its age.

Alert rules and their `promtool` unit tests live in `deploy/prometheus/`, Grafana's provisioning
in `deploy/grafana/`, the dashboards it provisions in `dashboards/` here.
"""
