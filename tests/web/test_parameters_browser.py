"""Rule parameters with four eyes in a real browser (Debian's chromium, offline).

Admin A proposes (a bad value first: refused with the validator's message), cannot approve
their own proposal, admin B backtests and approves it, an analyst gets 403. The page's
screenshot lands in test-artifacts/web/parameters.png (docs/screenshots/ keeps a copy).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from playwright.sync_api import Page, expect

from ledgerguard.db.cases import write_label
from ledgerguard.db.engines import migration_engine
from ledgerguard.fraud.parameter_sets import active_parameters
from ledgerguard.settings import Settings
from tests.web.support import make_user, post_transaction
from tests.web.test_browser import assert_fields_labelled, browser_login, shot

PAGE = "/review/admin/parameters"


def yesterdays_traffic(settings: Settings, api_url: str, api_key: str) -> None:
    """A card-testing burst of five small charges (velocity at the settings' 5, not at the
    proposal's 6) and one large amount confirmed as fraud, yesterday: the backtest has figures."""
    at = datetime.combine(datetime.now(UTC).date() - timedelta(days=1), time(10), UTC)
    user_id = 88_000_000 + at.microsecond + int(at.timestamp()) % 1_000_000
    for minute in range(5):
        post_transaction(
            api_url,
            api_key,
            amount="4.99",
            occurred_at=at + timedelta(minutes=minute),
            user_id=user_id,
        )
    fraud = post_transaction(api_url, api_key, amount="15000.00", occurred_at=at)
    engine = migration_engine(settings)
    try:
        with engine.begin() as conn:
            write_label(conn, transaction_id=fraud, is_fraud=True, source="test", now=at)
    finally:
        engine.dispose()


def test_propose_as_one_admin_approve_as_another(
    page: Page, settings: Settings, api_url: str, api_key: str, screenshots: Path, clean_sets
):
    yesterdays_traffic(settings, api_url, api_key)
    alice, bob = make_user(settings, "admin"), make_user(settings, "admin")
    browser_login(page, alice)
    page.get_by_role("link", name="Parameters").click()
    expect(page).to_have_url(PAGE)
    assert_fields_labelled(page)
    expect(page.get_by_label("anomaly_ratio")).to_have_value("3.0")

    page.get_by_label("anomaly_ratio").fill("0.5")
    page.get_by_role("button", name="Propose").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "anomaly_ratio: Input should be greater than 1"
    )
    expect(page.get_by_label("anomaly_ratio")).to_have_value("0.5")  # the draft is kept

    page.get_by_label("anomaly_ratio").fill("4")
    page.get_by_label("velocity_min_count").fill("6")
    page.get_by_label("Why").fill("velocity alerts on <script>weekend</script> bursts")
    page.get_by_role("button", name="Propose").click()
    expect(page.get_by_role("status")).to_contain_text("proposed parameter set")
    set_id = int(re.search(r"set (\d+)", page.get_by_role("status").inner_text()).group(1))  # type: ignore[union-attr]
    expect(page.get_by_text("Your proposal: another administrator")).to_be_visible()
    expect(page.get_by_text("velocity alerts on <script>weekend</script> bursts")).to_be_visible()
    assert page.get_by_role("button", name=f"Approve set {set_id}").count() == 0

    # self-approval, forced past the page: refused with a clear message, nothing changes
    token = page.locator("input[name=csrf_token]").first.input_value()
    own = page.request.post(f"{PAGE}/{set_id}/approve", form={"csrf_token": token})
    assert own.status == 409 and "second administrator" in own.text()
    assert active_parameters(settings).version is None

    page.get_by_role("button", name="Log out").click()
    browser_login(page, bob)
    page.goto(PAGE)
    page.get_by_role("button", name=f"Backtest set {set_id}").click()
    expect(
        page.get_by_role("heading", name=re.compile(f"Backtest of set {set_id}"))
    ).to_be_visible()
    shot(page, screenshots, "parameters")
    page.get_by_role("button", name=f"Approve set {set_id}").click()
    expect(page.get_by_role("status")).to_contain_text(f"parameter set {set_id} approved")
    expect(page.get_by_text(f"{set_id} (in force)")).to_be_visible()
    shot(page, screenshots, "parameters-approved")
    active = active_parameters(settings)
    assert (active.version, active.params.anomaly_ratio, active.params.velocity_min_count) == (
        set_id,
        4.0,
        6,
    )

    page.goto(f"/review/admin/audit?target=parameter_set:{set_id}")
    expect(page.get_by_role("cell", name="params_propose", exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="params_approve", exact=True)).to_be_visible()

    page.get_by_role("button", name="Log out").click()
    browser_login(page, make_user(settings))
    assert page.get_by_role("link", name="Parameters").count() == 0
    answer = page.goto(PAGE)
    assert answer is not None and answer.status == 403
    expect(page.get_by_role("alert")).to_have_text("this page is for administrators")
    assert page.blocked == []  # type: ignore[attr-defined]
