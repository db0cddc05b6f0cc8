"""Jinja2 templates of the web app (autoescaped: every user-supplied text is escaped)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from ledgerguard.money import display_amount
from ledgerguard.web.auth import CSRF_FIELD, CSRF_HEADER

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
templates = Jinja2Templates(directory=TEMPLATES)


def age(moment: datetime | None) -> str:
    """How long ago, in the largest whole unit (queue ages)."""
    if moment is None:
        return "-"
    seconds = max(0, int((datetime.now(UTC) - moment).total_seconds()))
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def utc(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def money(amount: Decimal | None, currency: str) -> str:
    """An amount in its currency's minor units (stored columns carry four decimals), thousands
    separated as the reasons write amounts: 15,000.00 USD, 2,000,000 JPY. (The API and the
    reports keep the plain machine form, 15000.00.)"""
    return "-" if amount is None else display_amount(amount, currency)


templates.env.filters["age"] = age
templates.env.filters["money"] = money
templates.env.filters["utc"] = utc


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page with the signed-in user and the CSRF token every form needs."""
    session = getattr(request.state, "session", None)
    return templates.TemplateResponse(
        request,
        name,
        {
            "user": session.user if session else None,
            "csrf_token": session.csrf_token if session else None,
            "csrf_field": CSRF_FIELD,
            "csrf_header": CSRF_HEADER,
            **context,
        },
        status_code=status_code,
    )
