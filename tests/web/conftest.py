"""Browser fixtures: Playwright driving Debian's chromium (never Playwright's own download)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledgerguard.settings import Settings
from tests.web.support import reset_parameter_sets

CHROMIUM = os.environ.get("LEDGERGUARD_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Screenshots of every page the browser tests visit (kept after the run, for people to look at).
ARTIFACTS = (
    Path(
        os.environ.get(
            "LEDGERGUARD_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"
        )
    )
    / "web"
)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make setup` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, api_url: str) -> Iterator[object]:
    """A fresh browser context that can reach the API under test and nothing else (offline)."""
    context = browser.new_context(base_url=api_url, viewport={"width": 1360, "height": 900})
    blocked: list[str] = []

    def only_local(route) -> None:  # type: ignore[no-untyped-def]
        if route.request.url.startswith(api_url):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    page.blocked = blocked  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def clean_sets(settings: Settings, cluster: object) -> Iterator[None]:
    """No approved parameter set before or after the test: other tests' analyses must run with
    the settings' parameters."""
    reset_parameter_sets(settings)
    try:
        yield
    finally:
        reset_parameter_sets(settings)


@pytest.fixture(scope="session")
def screenshots() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
