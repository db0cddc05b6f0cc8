"""Figures of the overview page, from the replica: alerts, backlog, decisions, rule precision.

Grouping is done by the server on (day, rule_ids) and the comma lists are split here: the set of
distinct rule combinations is small, so the rows that cross the wire stay few at any size.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ledgerguard.db.tables import fraud_scores, review_cases, web_users

#: Backlog age buckets: (label, lower bound in days).
AGE_BUCKETS = (("< 1 day", 0), ("1-3 days", 1), ("3-7 days", 3), ("> 7 days", 7))


@dataclass
class Overview:
    days: list[str] = field(default_factory=list)
    alerts_by_rule: dict[str, dict[str, int]] = field(default_factory=dict)
    backlog: dict[str, int] = field(default_factory=dict)
    decisions: dict[str, dict[str, int]] = field(default_factory=dict)
    precision: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "alerts_by_rule": self.alerts_by_rule,
            "backlog": self.backlog,
            "decisions": self.decisions,
            "precision": self.precision,
        }


def overview(sync: sa.Connection, *, now: datetime, days: int = 30) -> Overview:
    since = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    result = Overview(days=[(since + timedelta(days=i)).date().isoformat() for i in range(days)])
    flagged = fraud_scores.c.flagged == sa.true()

    day = sa.func.date(fraud_scores.c.occurred_at)
    per_day: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in sync.execute(
        sa.select(day.label("day"), fraud_scores.c.rule_ids, sa.func.count().label("n"))
        .where(flagged, fraud_scores.c.occurred_at >= since)
        .group_by(day, fraud_scores.c.rule_ids)
    ):
        for rule in filter(None, row.rule_ids.split(",")):
            per_day[rule][row.day.isoformat()] += row.n
    result.alerts_by_rule = {rule: dict(counts) for rule, counts in sorted(per_day.items())}

    joined = fraud_scores.outerjoin(
        review_cases, review_cases.c.transaction_id == fraud_scores.c.transaction_id
    )
    age_days = sa.func.datediff(sa.literal(now.replace(tzinfo=None)), fraud_scores.c.analysed_at)
    bucket = sa.case(
        *((age_days >= low, label) for label, low in reversed(AGE_BUCKETS)), else_="< 1 day"
    )
    counts = dict(
        sync.execute(
            sa.select(bucket, sa.func.count())
            .select_from(joined)
            .where(
                flagged, sa.or_(review_cases.c.status.is_(None), review_cases.c.status != "decided")
            )
            .group_by(bucket)
        ).all()
    )
    result.backlog = {label: int(counts.get(label, 0)) for label, _ in AGE_BUCKETS}

    decided_day = sa.func.date(review_cases.c.decided_at)
    decisions: dict[str, dict[str, int]] = defaultdict(dict)
    for row in sync.execute(
        sa.select(decided_day.label("day"), web_users.c.username, sa.func.count().label("n"))
        .join(web_users, web_users.c.id == review_cases.c.decided_by)
        .where(review_cases.c.status == "decided", review_cases.c.decided_at >= since)
        .group_by(decided_day, web_users.c.username)
    ):
        decisions[row.username][row.day.isoformat()] = row.n
    result.decisions = dict(decisions)

    tally: dict[str, dict[str, int]] = defaultdict(lambda: {"fraud": 0, "legitimate": 0})
    for row in sync.execute(
        sa.select(fraud_scores.c.rule_ids, review_cases.c.decision, sa.func.count().label("n"))
        .select_from(joined)
        .where(review_cases.c.status == "decided")
        .group_by(fraud_scores.c.rule_ids, review_cases.c.decision)
    ):
        key = "fraud" if row.decision == "confirm_fraud" else "legitimate"
        for rule in filter(None, row.rule_ids.split(",")):
            tally[rule][key] += row.n
    result.precision = {
        rule: {**t, "precision": round(t["fraud"] / (t["fraud"] + t["legitimate"]), 4)}
        for rule, t in sorted(tally.items())
        if t["fraud"] + t["legitimate"]
    }
    return result
