"""Exceptions of the fraud engine; the CLI and the DAGs turn them into messages or task failures."""

from __future__ import annotations

from dataclasses import dataclass

from ledgerguard.errors import LedgerGuardError


class FraudError(LedgerGuardError):
    """Base of every expected failure of `ledgerguard.fraud`."""


class FraudAnalysisError(FraudError, ValueError):
    """An analysis was asked for something it cannot do (naive times, empty interval, bad bucket)."""


@dataclass(frozen=True)
class RowError:
    """One bad row of an imported file; `line` is the 1-based line number in the file."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class ImportRejected(FraudError):
    """A file was refused as a whole: nothing of it was loaded. `errors` lists the bad rows."""

    SHOWN = 20

    def __init__(self, path: str, errors: list[RowError]) -> None:
        self.path = path
        self.errors = errors
        shown = "\n".join(f"  {error}" for error in errors[: self.SHOWN])
        more = f"\n  ... and {len(errors) - self.SHOWN} more" if len(errors) > self.SHOWN else ""
        super().__init__(
            f"{path}: {len(errors)} bad row{'s' if len(errors) != 1 else ''}, nothing was loaded; "
            f"fix them and import the file again:\n{shown}{more}"
        )

    def __reduce__(self) -> tuple[type[ImportRejected], tuple[str, list[RowError]]]:
        # Raised in the importer's checking process and re-raised in the parent.
        return (ImportRejected, (self.path, self.errors))
