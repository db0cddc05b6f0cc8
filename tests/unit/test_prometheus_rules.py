"""The alert rules: `promtool check rules` and `promtool test rules` on deploy/prometheus/.

The scenarios themselves (a primary that stops answering, a broken IO thread, a growing
heartbeat lag, 9 % of requests failing...) are in deploy/prometheus/tests/*.yml; this module
makes `make test` run them and checks that every alert the runbook promises exists and is tested.
"""

from __future__ import annotations

import subprocess

import yaml

from ledgerguard.monitoring.config import DEPLOY_DIR
from ledgerguard.monitoring.process import find_tool

PROMETHEUS = DEPLOY_DIR / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS / "tests").glob("*.yml"))

#: The alerts of the issue, plus the two that say when the others cannot see.
EXPECTED_ALERTS = {
    "PrimaryDown",
    "ReplicaDown",
    "ReplicationBroken",
    "ReplicationLagHigh",
    "APIHighErrorRate",
    "APIHighLatencyP99",
    "APIDown",
    "ReplicationStatusMissing",
    "HeartbeatStale",
    "BackupTooOld",
    "BinlogArchiveLagging",
    "FraudScorerLagging",
}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [find_tool("promtool"), *args], capture_output=True, text=True, timeout=120
    )


def _alerts() -> dict[str, dict]:
    alerts = {}
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    alerts[rule["alert"]] = rule
    return alerts


def test_rule_files_are_valid():
    result = _promtool("check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass():
    assert TEST_FILES
    result = _promtool("test", "rules", *map(str, TEST_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_promised_alert_exists_with_severity_and_summary():
    alerts = _alerts()
    assert set(alerts) == EXPECTED_ALERTS
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name


def test_every_alert_fires_in_some_unit_test():
    fired = set()
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    fired.add(check["alertname"])
    assert fired == EXPECTED_ALERTS
