"""Rule parameters changed in the web app with four eyes, over HTTP against the real servers.

Propose (validated as `FraudParameters` validates), refuse one's own approval, approve as a
second administrator, refuse stale forms; the approved set is what the nightly analysis uses.
(The browser flow and the page's screenshot: test_parameters_browser.py.)
"""

from __future__ import annotations

import json
import re
from datetime import date

import httpx
import pytest

from ledgerguard.fraud.errors import FraudAnalysisError
from ledgerguard.fraud.parameter_sets import active_parameters
from ledgerguard.fraud.pipeline import analyze_interval, day_interval
from ledgerguard.settings import Settings
from tests.support import api_conn
from tests.web.support import insert_approved_set, logged_in, page_csrf

PAGE = "/review/admin/parameters"


def set_count(settings: Settings) -> int:
    with api_conn(settings) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM fraud_parameter_sets")
        return int(cur.fetchone()[0])


def audit_of(settings: Settings, set_id: int) -> list[tuple[str, str, dict, dict]]:
    with api_conn(settings) as conn, conn.cursor() as cur:
        cur.execute(
            f"SELECT actor, action, before_value, after_value FROM `{settings.database}_audit`"
            ".audit_log WHERE target = %s ORDER BY id",
            (f"parameter_set:{set_id}",),
        )
        return [(a, b, json.loads(c), json.loads(d)) for a, b, c, d in cur.fetchall()]


def based_on(html: str) -> str:
    return re.search(r'name="based_on" value="([^"]*)"', html).group(1)  # type: ignore[union-attr]


def propose(client: httpx.Client, **values: str) -> httpx.Response:
    page = client.get(PAGE).text
    form = {"csrf_token": page_csrf(client, PAGE), "based_on": based_on(page), **values}
    return client.post(PAGE, data=form)


def proposed_id(answer: httpx.Response) -> int:
    assert answer.status_code == 200, answer.text[-3000:]
    return int(re.search(r"proposed parameter set (\d+)", answer.text).group(1))  # type: ignore[union-attr]


def test_analyst_gets_403(api_url: str, settings: Settings, clean_sets):
    with logged_in(api_url, settings) as analyst:
        assert analyst.get(PAGE).status_code == 403
        token = page_csrf(analyst)
        refused = analyst.post(PAGE, data={"csrf_token": token, "anomaly_ratio": "4"})
        assert refused.status_code == 403 and "administrators" in refused.text
    assert set_count(settings) == 0


def test_bad_values_are_refused_with_the_validators_message(
    api_url: str, settings: Settings, clean_sets
):
    with logged_in(api_url, settings, role="admin") as admin:
        page = admin.get(PAGE)
        assert page.status_code == 200
        # the form shows every tunable parameter with the value in force
        assert 'name="anomaly_ratio" value="3.0"' in page.text
        assert 'name="customer_windows_days" value="1, 7, 30"' in page.text
        assert 'name="page_rows"' not in page.text  # a deployment knob, not a rule parameter

        too_low = propose(admin, anomaly_ratio="0.5")
        assert too_low.status_code == 400
        assert "anomaly_ratio: Input should be greater than 1" in too_low.text
        not_a_number = propose(admin, large_amount_usd="ten thousand")
        assert not_a_number.status_code == 400 and "large_amount_usd" in not_a_number.text
        bad_window = propose(admin, customer_windows_days="1, 0")
        assert bad_window.status_code == 400 and "whole days &gt;= 1" in bad_window.text
        unknown = propose(admin, anomaly_ratoi="4")
        assert unknown.status_code == 400 and "unknown parameter anomaly_ratoi" in unknown.text
        knob = propose(admin, page_rows="5000")
        assert knob.status_code == 400 and "unknown parameter page_rows" in knob.text
        nothing = propose(admin)
        assert nothing.status_code == 400 and "changes no parameter" in nothing.text
    assert set_count(settings) == 0


def test_propose_self_approval_refused_second_admin_approves(
    api_url: str, settings: Settings, clean_sets
):
    assert active_parameters(settings).version is None
    with (
        logged_in(api_url, settings, role="admin") as alice,
        logged_in(api_url, settings, role="admin") as bob,
    ):
        set_id = proposed_id(propose(alice, anomaly_ratio="4.5", note="fewer <b>false</b> alarms"))
        page = alice.get(PAGE).text
        assert "fewer &lt;b&gt;false&lt;/b&gt; alarms" in page  # escaped
        assert "another administrator approves or rejects it" in page

        token = page_csrf(alice, PAGE)
        own = alice.post(f"{PAGE}/{set_id}/approve", data={"csrf_token": token})
        assert own.status_code == 409 and "second administrator" in own.text
        assert active_parameters(settings).version is None

        forged = bob.post(f"{PAGE}/{set_id}/approve", data={"csrf_token": "forged"})
        assert forged.status_code == 403
        approved = bob.post(f"{PAGE}/{set_id}/approve", data={"csrf_token": page_csrf(bob, PAGE)})
        assert approved.status_code == 200 and f"parameter set {set_id} approved" in approved.text

        again = bob.post(f"{PAGE}/{set_id}/reject", data={"csrf_token": page_csrf(bob, PAGE)})
        assert again.status_code == 409 and "already approved meanwhile" in again.text

    active = active_parameters(settings)
    assert active.version == set_id and active.params.anomaly_ratio == 4.5
    assert active.params.velocity_min_count == settings.fraud.velocity_min_count
    actions = audit_of(settings, set_id)
    assert [(row[1], row[2], row[3]) for row in actions] == [
        ("params_propose", {"anomaly_ratio": "3.0"}, {"anomaly_ratio": "4.5"}),
        (
            "params_approve",
            {"version": None, "anomaly_ratio": "3.0"},
            {"version": set_id, "anomaly_ratio": "4.5"},
        ),
    ]
    assert actions[0][0] != actions[1][0]

    # the nightly analysis runs with the approved set and says which one
    start, end = day_interval(date(2017, 1, 2))
    assert analyze_interval(settings, start=start, end=end).parameter_set == set_id


def test_stale_forms_are_refused(api_url: str, settings: Settings, clean_sets):
    with (
        logged_in(api_url, settings, role="admin") as alice,
        logged_in(api_url, settings, role="admin") as bob,
        logged_in(api_url, settings, role="admin") as carol,
    ):
        old_page = carol.get(PAGE).text
        first = proposed_id(propose(alice, velocity_min_count="6"))
        second = proposed_id(propose(carol, structuring_min_count="3"))
        token = page_csrf(bob, PAGE)
        assert bob.post(f"{PAGE}/{first}/approve", data={"csrf_token": token}).status_code == 200

        # proposed on the settings, but set `first` is active now: approving it would undo it
        stale = bob.post(f"{PAGE}/{second}/approve", data={"csrf_token": token})
        assert stale.status_code == 409 and "reject it and propose again" in stale.text
        rejected = bob.post(f"{PAGE}/{second}/reject", data={"csrf_token": token})
        assert rejected.status_code == 200 and f"parameter set {second} rejected" in rejected.text
        assert [row[1] for row in audit_of(settings, second)] == [
            "params_propose",
            "params_reject",
        ]

        # a propose form opened before `first` became active
        form = {
            "csrf_token": page_csrf(carol, PAGE),
            "based_on": based_on(old_page),
            "anomaly_ratio": "5",
        }
        old_form = carol.post(PAGE, data=form)
        assert old_form.status_code == 409 and "reload the page" in old_form.text

        # the next proposal starts from the set in force and keeps its change
        third = proposed_id(propose(carol, anomaly_ratio="5"))
        assert (
            alice.post(
                f"{PAGE}/{third}/approve", data={"csrf_token": page_csrf(alice, PAGE)}
            ).status_code
            == 200
        )
    active = active_parameters(settings)
    assert active.version == third
    assert (active.params.velocity_min_count, active.params.anomaly_ratio) == (6, 5.0)
    assert set_count(settings) == 3


def test_backtest_of_a_proposal_writes_nothing(api_url: str, settings: Settings, clean_sets):
    with logged_in(api_url, settings, role="admin") as alice:
        set_id = proposed_id(propose(alice, score_threshold="0.9"))
        answer = alice.post(
            f"{PAGE}/{set_id}/backtest", data={"csrf_token": page_csrf(alice, PAGE), "days": "2"}
        )
        assert answer.status_code == 200, answer.text[-3000:]
        assert f"Backtest of set {set_id}" in answer.text and "average precision" in answer.text
        too_long = alice.post(
            f"{PAGE}/{set_id}/backtest", data={"csrf_token": page_csrf(alice, PAGE), "days": "99"}
        )
        assert too_long.status_code == 422
    assert active_parameters(settings).version is None


def test_an_active_set_that_no_longer_validates_stops_runs_until_replaced(
    api_url: str, settings: Settings, clean_sets
):
    """E.g. a value the code now refuses: no run with unknown values, and the page can fix it."""
    broken = insert_approved_set(settings, '{"anomaly_ratio": 0.5}')
    with pytest.raises(FraudAnalysisError, match=f"parameter set {broken}: anomaly_ratio"):
        active_parameters(settings)
    start, end = day_interval(date(2017, 1, 3))
    with pytest.raises(FraudAnalysisError, match="anomaly_ratio"):
        analyze_interval(settings, start=start, end=end)

    with (
        logged_in(api_url, settings, role="admin") as alice,
        logged_in(api_url, settings, role="admin") as bob,
    ):
        page = alice.get(PAGE)
        assert page.status_code == 200 and "refuse to run until a new set" in page.text
        fixed = proposed_id(propose(alice, anomaly_ratio="3.5"))
        approved = bob.post(f"{PAGE}/{fixed}/approve", data={"csrf_token": page_csrf(bob, PAGE)})
        assert approved.status_code == 200, approved.text[-2000:]
    active = active_parameters(settings)
    assert (active.version, active.params.anomaly_ratio) == (fixed, 3.5)
