"""Request and response models of the transaction API.

Money crosses the API as JSON strings in responses (`"15000.00"`), so no client float ever
rounds a ledger amount; requests may send a number or a string. Unknown fields are refused, as
are NaN/Infinity, non-positive amounts, more decimals than the currency has, and codes that are
not active ISO 4217 currencies; each error names the field and the rule.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from ledgerguard.field_rules import (
    NO_CONTROL_CHARACTERS_PATTERN,
)
from ledgerguard.money import (
    MAX_AMOUNT,
    MoneyError,
    active_currencies,
    check_amount,
    currency_exponent,
    format_amount,
)
from ledgerguard.utc import as_utc

#: The largest id the API takes: 2**53 - 1, the largest integer every JSON client represents
#: exactly (a double). Beyond it a client's "valid" number is not the one it meant, and a bound
#: stated as a JSON number near 2**63 cannot be checked exactly by generated clients either.
MAX_ID = 2**53 - 1


def _json_integer(value: object) -> object:
    """JSON Schema counts 510509.0 as an integer, so the API does too (exactly; strings and
    fractions are still refused by the strict check that follows)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Id = Annotated[int, Field(strict=True, gt=0, le=MAX_ID), BeforeValidator(_json_integer)]


def _amount_pattern(exponent: int) -> str:
    """A plain decimal string of at most MAX_AMOUNT with at most `exponent` significant decimals
    (trailing zeros up to 4 places are fine, as the server reads it)."""
    fraction = rf"(\.\d{{0,{exponent}}}0{{0,{4 - exponent}}})?" if exponent else r"(\.0{0,4})?"
    return rf"^0*(?=[0-9.]*[1-9])(\d{{1,12}}{fraction}|1000000000000(\.0{{0,4}})?)$"


#: Any amount string the server reads at all (the per-currency rule comes on top).
AMOUNT_PATTERN = _amount_pattern(4)


def _plain_amount(value: object) -> object:
    """Strings must be plain decimals as the document states (no exponent, sign or spaces)."""
    if isinstance(value, str) and not re.fullmatch(AMOUNT_PATTERN, value):
        raise ValueError("amount must be a plain positive decimal such as 15000.00")
    return value


def _amount_schema(exponent: int) -> dict[str, Any]:
    step = 10**-exponent
    return {
        "anyOf": [
            {"type": "number", "minimum": step, "maximum": int(MAX_AMOUNT), "multipleOf": step},
            {"type": "string", "pattern": _amount_pattern(exponent)},
        ]
    }


def _transaction_create_schema(schema: dict[str, Any]) -> None:
    """The per-currency rules, stated in the document: active ISO 4217 codes only, and each
    currency's number of decimals (USD 2, JPY 0, BHD 3, ...)."""
    by_exponent: dict[int, list[str]] = {}
    for code in sorted(active_currencies()):
        by_exponent.setdefault(currency_exponent(code), []).append(code)
    schema["properties"]["currency"] = {"type": "string", "enum": sorted(active_currencies())}
    schema["properties"]["amount"] = {"title": "Amount", **_amount_schema(4)}
    schema["allOf"] = [
        {
            "if": {"properties": {"currency": {"enum": codes}}, "required": ["currency"]},
            "then": {"properties": {"amount": _amount_schema(exponent)}},
        }
        for exponent, codes in sorted(by_exponent.items())
    ]
    schema["examples"] = [{"user_id": 999, "amount": "15000.00", "currency": "USD"}]


class TransactionCreate(BaseModel):
    """The original design's `{user_id, amount, currency}` plus optional context."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=_transaction_create_schema,
    )

    user_id: Id
    amount: Annotated[
        Decimal,
        Field(gt=0, allow_inf_nan=False, max_digits=19, decimal_places=4),
        BeforeValidator(_plain_amount),
    ]
    currency: Annotated[str, Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$")]
    external_id: Annotated[
        str | None,
        Field(min_length=1, max_length=64, pattern=NO_CONTROL_CHARACTERS_PATTERN),
    ] = None
    terminal_id: Id | None = None
    merchant_id: Id | None = Field(
        None,
        description="A key limited to a merchant (`apikey create --merchant`) stores its own "
        "merchant when this is absent and answers 403 for any other value",
    )
    occurred_at: datetime | None = Field(
        None, description="ISO 8601; without an offset it is read as UTC; default: now"
    )

    @field_validator("currency")
    @classmethod
    def _active_currency(cls, value: str) -> str:
        currency_exponent(value)  # raises MoneyError (a ValueError) with the rule
        return value

    @field_validator("occurred_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        # the range (1999 .. now + skew) cannot be stated in the document: the route answers 400
        return as_utc(value, assume_utc=True)

    @model_validator(mode="after")
    def _amount_fits_currency(self) -> TransactionCreate:
        try:
            check_amount(self.amount, self.currency, maximum=MAX_AMOUNT)
        except MoneyError as exc:
            raise ValueError(f"amount: {exc}") from None
        return self


class TransactionPublic(BaseModel):
    """A stored transaction; money as strings with the currency's decimals."""

    id: int
    external_id: str | None
    user_id: int
    amount: str
    currency: str
    amount_usd: str | None
    terminal_id: int | None
    merchant_id: int | None
    occurred_at: datetime
    created_at: datetime
    status: str

    @classmethod
    def from_row(cls, row: Any, **extra: Any) -> Self:
        """The public form of a `transactions` row; `extra` fills a subclass's own fields."""
        return cls(
            id=row.id,
            external_id=row.external_id,
            user_id=row.user_id,
            amount=format_amount(row.amount, row.currency),
            currency=row.currency,
            amount_usd=None if row.amount_usd is None else format_amount(row.amount_usd, "USD"),
            terminal_id=row.terminal_id,
            merchant_id=row.merchant_id,
            occurred_at=row.occurred_at,
            created_at=row.created_at,
            status=row.status,
            **extra,
        )


class RiskPublic(BaseModel):
    """The fraud verdict of a transaction: real-time a second after the commit, the nightly
    run's once it has run (it wins)."""

    score: str = Field(description="0.0000-1.0000, as a string")
    flagged: bool
    rule_ids: list[str]
    reasons: list[str]
    scored_at: datetime
    source: str = Field(description="`realtime` (the streaming scorer) or `nightly`")

    @classmethod
    def from_row(cls, row: Any) -> RiskPublic:
        return cls(
            score=f"{row.score:.4f}",
            flagged=bool(row.flagged),
            rule_ids=[rule for rule in row.rule_ids.split(",") if rule],
            reasons=[reason for reason in row.reasons.split("; ") if reason],
            scored_at=row.analysed_at,
            source=row.source,
        )


class TransactionDetail(TransactionPublic):
    risk: RiskPublic | None = Field(None, description="null until the transaction is scored")


class AlertPublic(RiskPublic):
    """A flagged transaction."""

    transaction_id: int
    user_id: int
    occurred_at: datetime
    amount: str
    currency: str
    amount_usd: str | None

    @classmethod
    def from_row(cls, row: Any) -> AlertPublic:
        return cls(
            **RiskPublic.from_row(row).model_dump(),
            transaction_id=row.transaction_id,
            user_id=row.user_id,
            occurred_at=row.occurred_at,
            amount=format_amount(row.amount, row.currency),
            currency=row.currency,
            amount_usd=None if row.amount_usd is None else format_amount(row.amount_usd, "USD"),
        )


class AlertsPage(BaseModel):
    data: list[AlertPublic]
    count: int
    next: str | None = Field(None, description="cursor of the next page, null on the last one")


class TransactionCreated(TransactionPublic):
    consistent_after: str | None = Field(
        None,
        description="GTID of the commit; pass it as `consistent_after` to read this write back "
        "from the replica",
    )


class TransactionsPage(BaseModel):
    data: list[TransactionPublic]
    count: int
    next: str | None = Field(None, description="cursor of the next page, null on the last one")


class LabelCreate(BaseModel):
    """A confirmed verdict on a transaction (chargeback, analyst decision)."""

    model_config = ConfigDict(extra="forbid")

    is_fraud: bool = Field(strict=True)
    source: Annotated[str, Field(min_length=1, max_length=64)] = "analyst"
    labelled_at: datetime | None = Field(
        None,
        description="ISO 8601, when the verdict was reached (e.g. the chargeback's date); "
        "without an offset it is read as UTC; default: now. 1999 … now + 5 min, like "
        "occurred_at (else 400)",
    )

    @field_validator("labelled_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value, assume_utc=True)


class LabelPublic(BaseModel):
    transaction_id: int
    is_fraud: bool
    source: str
    labelled_at: datetime


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    primary: bool
    replica: bool
    replica_gtid_gap: int | None = Field(
        None, description="transactions the replica still has to apply (GTID sequence gap)"
    )
    epoch: int = Field(0, description="failover epoch of the recorded topology this worker follows")


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer of the API: `message` is one sentence for people; `detail` is
    the same sentence, or for 422 the list of invalid fields (FastAPI's shape)."""

    detail: str | list[ValidationIssue]
    message: str


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries declaring `codes` with the one error body (for the OpenAPI document)."""
    return {code: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[code]} for code in codes}


ERROR_DESCRIPTIONS = {
    400: "the request is well-formed but refused (e.g. a consistent_after beyond the primary)",
    401: "missing, unknown or revoked X-API-Key",
    403: "the API key lacks the scope this route needs, or is limited to one merchant and the "
    "transaction (or the body's merchant_id) is another merchant's",
    404: "no such resource",
    409: "Idempotency-Key reused with another body, or external_id taken",
    413: "request body too large",
    422: "invalid field; `message` names the field and the rule",
    429: "rate limit exceeded; retry after Retry-After seconds",
    503: "the database is unavailable or the write queue is full; retry after Retry-After seconds",
}
#: Answers every route behind an API key can give.
KEYED = (401, 403, 422, 429, 503)
