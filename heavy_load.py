#!/usr/bin/env python3
"""The original design's stress test, kept for its users: `python3 heavy_load.py`.

It runs `ledgerguard load` with the original defaults, 10 concurrent users (the original's 10
threads) for 60 s, against the local API with the demo key (`make demo` creates both). Any
`ledgerguard load` option may follow and overrides the defaults, e.g.
`python3 heavy_load.py --users 50 --duration 30 --json -`.

Started with a Python that lacks the package (the system `python3`), it re-runs itself with the
project's `.venv/bin/python`, so the original command line keeps working after `make setup`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ORIGINAL_DEFAULTS = ["--users", "10", "--duration", "60"]


def main() -> None:
    try:
        import typer

        from ledgerguard.cli.load import load
    except ImportError:
        venv_python = Path(__file__).resolve().parent / ".venv" / "bin" / "python"
        if venv_python.exists() and Path(sys.executable).resolve() != venv_python.resolve():
            os.execv(venv_python, [str(venv_python), __file__, *sys.argv[1:]])
        sys.exit("heavy_load.py needs the ledgerguard package: run `make setup` first")
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(load)
    app(args=[*ORIGINAL_DEFAULTS, *sys.argv[1:]], prog_name="heavy_load.py")


if __name__ == "__main__":
    main()
