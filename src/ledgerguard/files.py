"""Files that are either the old or the whole new version: write to a temporary, then rename.

Reports, the Airflow passwords file, exporter credentials and the cluster's topology file are all
read by other processes while we may be rewriting them; a reader must never see half a file, and
a secret must never be readable by others, not even for a moment (`mkstemp` creates the
temporary with 0600, and `mode` is applied before the rename).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO


def write_atomic(
    path: Path, write: Callable[[TextIO], object], *, mode: int = 0o644, newline: str | None = None
) -> Path:
    """Create or replace `path` with what `write(handle)` writes (UTF-8, fsynced), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "w", encoding="utf-8", newline=newline) as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: Path, text: str, *, mode: int = 0o644) -> Path:
    """`write_atomic` of a string."""
    return write_atomic(path, lambda out: out.write(text), mode=mode)


def write_private(path: Path, text: str) -> Path:
    """Write `text` to `path` readable by the owner only (0600 from the start), atomically."""
    return write_text_atomic(path, text, mode=0o600)


def private_dir(path: Path) -> Path:
    """`path` as a folder only its owner can enter (0700), created so or tightened if it exists."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path
