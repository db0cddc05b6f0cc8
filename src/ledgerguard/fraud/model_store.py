"""The versioned model store on disk: one folder per trained model, one promoted version.

Layout under `FraudParameters.model_store_dir`:

    0001/model.joblib   the fitted model (joblib)
    0001/card.json      what it is: features, training interval, metrics, threshold, libraries
    PROMOTED            the version the nightly analysis uses (one line)

Versions are numbered in training order and never overwritten, so a verdict's `model_version`
always names the exact file that scored it. Promotion rewrites `PROMOTED` atomically (write a
temporary file, then rename).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ledgerguard.fraud.errors import FraudError

MODEL_FILE = "model.joblib"
CARD_FILE = "card.json"
PROMOTED_FILE = "PROMOTED"


class ModelStoreError(FraudError, ValueError):
    """A version that does not exist or a store that cannot be read."""


def versions(store: Path) -> list[str]:
    """Stored versions, oldest first."""
    if not store.is_dir():
        return []
    return sorted(p.name for p in store.iterdir() if p.is_dir() and (p / CARD_FILE).is_file())


def next_version(store: Path) -> str:
    existing = [int(v) for v in versions(store) if v.isdigit()]
    return f"{max(existing, default=0) + 1:04d}"


def save(store: Path, model: Any, card: dict[str, Any]) -> str:
    """Write a new version (model + card); returns its id. Not promoted by this call."""
    import joblib

    version = next_version(store)
    folder = store / version
    folder.mkdir(parents=True, exist_ok=False)
    joblib.dump(model, folder / MODEL_FILE)
    card = {**card, "version": version}
    (folder / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return version


def card(store: Path, version: str) -> dict[str, Any]:
    path = store / version / CARD_FILE
    if not path.is_file():
        known = ", ".join(versions(store)) or "none"
        raise ModelStoreError(f"no model version {version!r} in {store} (stored: {known})")
    return dict(json.loads(path.read_text()))


def model_path(store: Path, version: str) -> Path:
    card(store, version)  # raises for an unknown version
    return store / version / MODEL_FILE


def promoted(store: Path) -> str | None:
    """The promoted version, or None (then the rules run alone)."""
    path = store / PROMOTED_FILE
    if not path.is_file():
        return None
    version = path.read_text().strip()
    return version or None


def promote(store: Path, version: str) -> None:
    card(store, version)
    temporary = store / f".{PROMOTED_FILE}.tmp"
    temporary.write_text(version + "\n")
    os.replace(temporary, store / PROMOTED_FILE)
