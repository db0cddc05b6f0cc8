"""Argon2id password hashes (argon2-cffi's defaults: RFC 9106 low-memory profile)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
#: Verified when the username is unknown, so a wrong name costs as long as a wrong password.
_DUMMY = _hasher.hash("not a real password")

MIN_LENGTH = 12


def hash_password(plain: str) -> str:
    if len(plain) < MIN_LENGTH:
        raise ValueError(f"a password needs at least {MIN_LENGTH} characters")
    return _hasher.hash(plain)


def verify_password(stored: str | None, plain: str) -> bool:
    """Whether `plain` matches `stored` (None: an unknown user, checked against a dummy)."""
    try:
        return _hasher.verify(stored or _DUMMY, plain) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)
