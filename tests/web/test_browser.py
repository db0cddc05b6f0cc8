"""The analyst app and the API docs in a real browser (Debian's chromium, offline).

Screenshots of every page land in test-artifacts/web/ (LEDGERGUARD_TEST_ARTIFACTS).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from ledgerguard.fraud.pipeline import analyze_interval, day_interval
from ledgerguard.monitoring.local import LocalMonitoring
from ledgerguard.settings import Settings
from tests.web.support import (
    PASSWORD,
    day_start,
    logged_in,
    make_user,
    page_csrf,
    post_transaction,
    store_verdict,
)

ORIGINAL_BODY = {"user_id": 999, "amount": 15000.00, "currency": "USD"}


def shot(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def browser_login(page: Page, username: str, password: str = PASSWORD) -> None:
    page.goto("/review/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url("/review/queue")


def assert_fields_labelled(page: Page) -> None:
    """Every visible form field has a label (basic accessibility)."""
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
            .filter((el) => el.type !== 'hidden' && el.offsetParent !== null)
            .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
            .map((el) => el.name)"""
    )
    assert unlabelled == [], unlabelled


def test_swagger_ui_offline_post_the_original_example(
    page: Page, api_url: str, api_key: str, screenshots: Path
):
    """The original design's first step: /docs, authorize, POST the $15,000 example, see 201."""
    page.goto("/docs")
    page.get_by_role("button", name="Authorize").first.click()
    page.locator(".modal-ux input[type=text], .modal-ux input[type=password]").first.fill(api_key)
    page.locator(".modal-ux").get_by_role("button", name="Apply credentials").click()
    page.locator(".modal-ux button.btn-done").click()
    operation = page.locator("#operations-transactions-create_transaction_transactions_post")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.locator("textarea.body-param__text").fill(json.dumps(ORIGINAL_BODY))
    operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table .response .response-col_status").first
    expect(status).to_have_text("201", timeout=20_000)
    shot(page, screenshots, "docs")
    page.goto("/redoc")
    expect(page.get_by_text("LedgerGuard transaction API").first).to_be_visible(timeout=20_000)
    shot(page, screenshots, "redoc")
    assert page.blocked == []  # type: ignore[attr-defined]  # nothing asked for the internet


def _recent_alerts(settings: Settings, api_url: str, api_key: str) -> list[int]:
    """Alerts over the last days (for charts worth looking at); scores and rules vary."""
    now = datetime.now(UTC)
    rules = (
        "large_amount",
        "structuring,large_amount",
        "velocity",
        "spending_anomaly",
        "terminal_risk",
    )
    ids = []
    for i in range(14):
        occurred = now - timedelta(days=i % 6, hours=1 + i)
        tx = post_transaction(
            api_url, api_key, amount="15000.00", occurred_at=occurred, terminal_id=4242
        )
        store_verdict(
            settings,
            tx,
            score=f"0.{55 + 3 * i}",
            occurred_at=occurred,
            rule_ids=rules[i % len(rules)],
            reasons="USD 15,000.00 is above the CTR line of USD 10,000",
        )
        ids.append(tx)
    return ids


def _decide_some(api_url: str, settings: Settings, ids: list[int]) -> None:
    with logged_in(api_url, settings) as client:
        for n, tx in enumerate(ids):
            token = page_csrf(client, f"/review/cases/{tx}")
            client.post(f"/review/cases/{tx}/claim", data={"csrf_token": token})
            decision = "confirm_fraud" if n % 3 else "legitimate"
            answer = client.post(
                f"/review/cases/{tx}/decide",
                data={"csrf_token": token, "decision": decision, "version": "1"},
            )
            assert answer.status_code == 303, answer.text


def test_analyst_decides_an_analysed_alert_and_sees_label_and_audit(
    page: Page, api_url: str, api_key: str, settings: Settings, screenshots: Path
):
    recent = _recent_alerts(settings, api_url, api_key)
    _decide_some(api_url, settings, recent[:6])
    # posted through the API, found by the real nightly analysis
    day = (datetime.now(UTC) - timedelta(days=400)).date()
    occurred = day_start(day) + timedelta(hours=12)
    tx = post_transaction(api_url, api_key, amount="15000.00", occurred_at=occurred)
    start, end = day_interval(day)
    result = analyze_interval(settings, start=start, end=end)
    assert result.flagged >= 1

    analyst = make_user(settings)
    browser_login(page, analyst)
    page.get_by_label("Status").select_option("all")
    shot(page, screenshots, "queue")
    assert_fields_labelled(page)
    page.goto(f"/review/queue?status=open&day={day}")
    row_link = page.get_by_role("link", name=f"#{tx}")
    expect(row_link).to_be_visible()
    # keyboard: tab to the alert's link and open it with Enter
    row_link.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"/review/cases/{tx}")
    expect(page.get_by_text("15,000.00 USD is above 10,000.00 USD").first).to_be_visible()
    page.get_by_role("button", name="Claim this case").click()
    page.get_by_label("confirm fraud").check()
    page.get_by_label("Note").fill("customer confirmed <b>not</b> theirs")
    assert_fields_labelled(page)
    shot(page, screenshots, "case")
    page.get_by_role("button", name="Record decision").click()
    expect(page.get_by_text("decided: the label is stored")).to_be_visible()
    expect(page.get_by_text("customer confirmed <b>not</b> theirs")).to_be_visible()  # escaped
    shot(page, screenshots, "case-decided")

    label = httpx.get(
        f"{api_url}/transactions/{tx}/label", headers={"X-API-Key": api_key}, timeout=30
    )
    assert label.status_code == 200, label.text
    assert label.json()["is_fraud"] is True and label.json()["source"] == f"analyst:{analyst}"

    for path, name in (
        ("/review/overview", "overview"),
        ("/review/approvals", "approvals"),
        ("/review/reports", "reports"),
        ("/review/operations", "operations"),
    ):
        page.goto(path)
        page.wait_for_load_state("networkidle")
        shot(page, screenshots, name)
    page.goto("/review/overview")
    expect(page.locator("#chart-alerts")).to_be_visible()
    assert page.evaluate("() => !!Chart.getChart('chart-alerts')")  # drawn by Chart.js

    page.get_by_role("button", name="Log out").click()
    browser_login(page, make_user(settings, "admin"))
    page.goto(f"/review/admin/audit?target=case:{tx}")
    expect(page.get_by_role("cell", name="decision", exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name=analyst, exact=True).first).to_be_visible()
    shot(page, screenshots, "audit")
    for path, name in (("/review/admin/users", "users"), ("/review/admin/keys", "keys")):
        page.goto(path)
        assert_fields_labelled(page)
        shot(page, screenshots, name)
    assert page.blocked == []  # type: ignore[attr-defined]


def test_refusals_in_the_browser(page: Page, settings: Settings, screenshots: Path):
    page.goto("/review/login")
    shot(page, screenshots, "login")
    browser_login(page, make_user(settings))
    answer = page.goto("/review/admin/audit")
    assert answer is not None and answer.status == 403
    expect(page.get_by_role("alert")).to_have_text("this page is for administrators")
    shot(page, screenshots, "forbidden")
    page.goto("/review/queue")
    # a form whose CSRF token was tampered with is refused
    page.evaluate(
        "() => document.querySelector('form.logout input[name=csrf_token]').value = 'forged'"
    )
    with page.expect_response(lambda r: r.url.endswith("/review/logout")) as response:
        page.get_by_role("button", name="Log out").click()
    assert response.value.status == 403
    page.goto("/review/queue")
    expect(page).to_have_url("/review/queue")  # still logged in: the forged logout did nothing


@pytest.fixture
def local_prometheus(settings: Settings, cluster) -> Iterator[str]:
    """Prometheus + exporters on the port the API under test asks (session settings)."""
    local = LocalMonitoring(settings.model_copy(update={"scrape_interval_seconds": 1}))
    try:
        local.up()
        yield local.prometheus().url
    finally:
        local.down()


def test_operations_page_draws_prometheus_panels(
    page: Page,
    api_url: str,
    api_key: str,
    settings: Settings,
    local_prometheus: str,
    screenshots: Path,
):
    for _ in range(20):  # some API traffic for the TPS and latency panels
        post_transaction(
            api_url, api_key, amount="12.50", occurred_at=datetime.now(UTC) - timedelta(minutes=1)
        )
    browser_login(page, make_user(settings))
    page.goto("/review/operations")
    expect(page.get_by_role("status")).to_contain_text("updated", timeout=30_000)
    drawn = page.evaluate(
        "() => [...document.querySelectorAll('#ops-panels canvas')]"
        ".filter((c) => Chart.getChart(c)).map((c) => c.dataset.title)"
    )
    assert "Replication lag (heartbeat)" in drawn and "API latency p50 / p95 / p99" in drawn
    page.wait_for_timeout(16_000)  # one automatic refresh, with more samples
    shot(page, screenshots, "operations")
