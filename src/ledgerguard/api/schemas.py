"""Request and response models of the transaction API.

Money crosses the API as JSON strings in responses (`"15000.00"`), so no client float ever
rounds a ledger amount; requests may send a number or a string. Unknown fields are refused, as
are NaN/Infinity, non-positive amounts, more decimals than the currency has, and codes that are
not active ISO 4217 currencies; each error names the field and the rule.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ledgerguard.money import (
    MAX_AMOUNT,
    MoneyError,
    check_amount,
    currency_exponent,
    format_amount,
)
from ledgerguard.utc import as_utc

#: How far in the future `occurred_at` may lie (clock skew between client and server).
MAX_CLOCK_SKEW = timedelta(minutes=5)

Id = Annotated[int, Field(strict=True, gt=0, le=2**63 - 1)]


class TransactionCreate(BaseModel):
    """The original design's `{user_id, amount, currency}` plus optional context."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"user_id": 999, "amount": "15000.00", "currency": "USD"}]},
    )

    user_id: Id
    amount: Annotated[Decimal, Field(allow_inf_nan=False, max_digits=19, decimal_places=4)]
    currency: Annotated[str, Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$")]
    external_id: Annotated[str | None, Field(min_length=1, max_length=64)] = None
    terminal_id: Id | None = None
    merchant_id: Id | None = None
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
        value = as_utc(value, assume_utc=True)
        if value > datetime.now(UTC) + MAX_CLOCK_SKEW:
            raise ValueError("occurred_at must not be in the future")
        if value.year < 1999:
            raise ValueError("occurred_at must be in 1999 or later")
        return value

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
    def from_row(cls, row: Any) -> TransactionPublic:
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


class ErrorBody(BaseModel):
    detail: Any
