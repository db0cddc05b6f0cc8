"""Where load goes and with which API key(s), resolved the same way by every load tool.

`ledgerguard load`, `heavy_load.py`, `locustfile.py` and the wrk script's wrapper all accept an
explicit URL and key; without them they fall back, in this order, to `LEDGERGUARD_API_URL` /
`LEDGERGUARD_API_KEY` and then to the local API of the settings
(`http://{api_host}:{api_port}`) and the demo key that `ledgerguard demo` keeps in
`<state dir>/demo-api-key`, so after `make demo` every tool works without arguments.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ledgerguard.errors import LedgerGuardError
from ledgerguard.settings import Settings

URL_VARIABLE = "LEDGERGUARD_API_URL"
KEY_VARIABLE = "LEDGERGUARD_API_KEY"


class NoApiKey(LedgerGuardError):
    """No key was given and no demo key exists."""


def api_url(settings: Settings) -> str:
    return f"http://{settings.api_host}:{settings.api_port}"


def split_keys(values: Iterable[str]) -> tuple[str, ...]:
    """Keys from repeated options or a comma/space-separated variable, duplicates removed."""
    keys: list[str] = []
    for value in values:
        for part in value.replace(",", " ").split():
            if part not in keys:
                keys.append(part)
    return tuple(keys)


def keys_from_file(path: Path) -> tuple[str, ...]:
    """Keys kept in a file (one per line, or separated by spaces/commas), so no key has to be
    written on a command line, where every user of the machine can read it (`ps`)."""
    try:
        keys = split_keys([path.read_text()])
    except OSError as exc:
        raise NoApiKey(f"cannot read API keys from {path}: {exc.strerror}") from exc
    if not keys:
        raise NoApiKey(f"{path} holds no API key")
    return keys


def demo_keys(settings: Settings) -> tuple[str, ...]:
    """The key saved by `ledgerguard demo`, or `NoApiKey` saying how to get one."""
    path = settings.state_dir / "demo-api-key"
    try:
        keys = keys_from_file(path)
    except NoApiKey:
        keys = ()
    if not keys:
        raise NoApiKey(
            f"no API key: pass --key, set {KEY_VARIABLE}, or run `ledgerguard demo` once so "
            f"{path} exists (or create one with `ledgerguard apikey create NAME`)"
        )
    return keys


def env_url() -> str | None:
    return os.environ.get(URL_VARIABLE) or None


def env_keys() -> tuple[str, ...]:
    return split_keys([os.environ.get(KEY_VARIABLE, "")])
