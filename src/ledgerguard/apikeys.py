"""API keys: format, hashing and scopes (storage SQL lives in `ledgerguard.db.api_keys`).

A key looks like `lg_<prefix>_<secret>`: the 12-hex-digit prefix is public (it finds the row and
names the key in `apikey list`), the 43-character secret is 256 random bits. Only
SHA-256(key) is stored: for a high-entropy random token a fast hash is as strong as a slow one, and
it keeps authentication off the hot path's CPU budget. Hashes are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from ledgerguard.errors import LedgerGuardError

#: `metrics`: read `/metrics` from another host (loopback needs no key; Prometheus scrapes there).
SCOPES = frozenset({"transactions:write", "transactions:read", "admin", "metrics"})
DEFAULT_SCOPES = ("transactions:write", "transactions:read")


class ApiKeyError(LedgerGuardError):
    """A key management request that cannot be done (unknown scope, duplicate name...)."""


def new_key() -> tuple[str, str]:
    """A fresh (plain key, prefix); the plain key is shown once and never stored."""
    prefix = secrets.token_hex(6)
    return f"lg_{prefix}_{secrets.token_urlsafe(32)}", prefix


def key_hash(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()


def prefix_of(plain: str) -> str | None:
    """The prefix of a well-formed key, else None (so garbage never reaches the database)."""
    parts = plain.split("_")
    if len(parts) < 3 or parts[0] != "lg" or len(parts[1]) != 12:
        return None
    return parts[1]


def parse_scopes(values: list[str] | tuple[str, ...] | str) -> tuple[str, ...]:
    """Validated, sorted, de-duplicated scopes."""
    items = values.split() if isinstance(values, str) else list(values)
    unknown = sorted(set(items) - SCOPES)
    if unknown:
        raise ApiKeyError(
            f"unknown scope(s) {', '.join(unknown)}; choose from {', '.join(sorted(SCOPES))}"
        )
    if not items:
        raise ApiKeyError("a key needs at least one scope")
    return tuple(sorted(set(items)))


@dataclass(frozen=True)
class ApiKeyRecord:
    id: int
    name: str
    prefix: str
    key_hash: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None
    #: the only merchant this key may write and read, or None for every merchant
    merchant_id: int | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def matches(self, plain: str) -> bool:
        """Constant-time check of a presented key against the stored hash."""
        return hmac.compare_digest(self.key_hash, key_hash(plain))

    def allows(self, scope: str) -> bool:
        """`admin` implies every scope."""
        return scope in self.scopes or "admin" in self.scopes

    def covers_merchant(self, merchant_id: int | None) -> bool:
        """Whether a transaction of `merchant_id` is within this key's reach.

        A key limited to a merchant covers only that merchant's transactions, not those without
        a merchant (they belong to no client of the key)."""
        return self.merchant_id is None or merchant_id == self.merchant_id
