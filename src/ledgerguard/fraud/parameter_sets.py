"""The fraud parameters in force: the settings' values with the active approved set on top.

Rule parameters start in the settings (`LEDGERGUARD_FRAUD__*`, `FraudParameters`). An
administrator may change them in the web app; a second administrator approves the change (four
eyes) and it is stored as a versioned set in `fraud_parameter_sets` (`ledgerguard.db.
parameter_sets`). `active_parameters` is the one function the nightly analysis, the streaming
scorer and backtests call to learn which values are in force, so they never disagree.

A set stores only the values that differ from the settings, so a value nobody changed in the web
app still follows the settings. Deployment knobs (`NOT_TUNABLE`: model paths, page size and
threads) are not rule parameters and stay in the settings alone.

Every override goes through `apply_overrides`, which validates exactly as `FraudParameters`
does and names an unknown parameter, so a typo is refused rather than silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError

from ledgerguard.db.engines import writer_engine
from ledgerguard.db.parameter_sets import ParameterSet, active_set
from ledgerguard.fraud.errors import FraudAnalysisError
from ledgerguard.settings import Settings
from ledgerguard.settings.fraud import FraudParameters

#: Settings of the deployment rather than of the rules: never changed from the web app.
NOT_TUNABLE = frozenset({"model_path", "model_store_dir", "page_rows", "page_threads"})
#: The parameters a set may change, in `FraudParameters`' order.
TUNABLE = tuple(name for name in FraudParameters.model_fields if name not in NOT_TUNABLE)


@dataclass(frozen=True)
class ActiveParameters:
    """The parameters in force and the version of the set they come from (None: settings)."""

    params: FraudParameters
    version: int | None

    def settings(self, settings: Settings) -> Settings:
        """`settings` with these parameters as `settings.fraud`."""
        return settings.model_copy(update={"fraud": self.params})


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "value"
        parts.append(f"{name}: {error['msg']} (got {error.get('input')!r})")
    return "; ".join(parts)


def apply_overrides(
    base: FraudParameters, overrides: dict[str, Any], *, where: str, tunable_only: bool = False
) -> FraudParameters:
    """`base` with `overrides` applied, validated as `FraudParameters` validates.

    Raises `FraudAnalysisError` starting with `where` (a file name, "proposal") for an unknown
    name (or, with `tunable_only`, a deployment setting) and for an invalid value.
    """
    allowed = TUNABLE if tunable_only else tuple(FraudParameters.model_fields)
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise FraudAnalysisError(
            f"{where}: unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
            "(see LEDGERGUARD_FRAUD__* in .env.example)"
        )
    try:
        return FraudParameters.model_validate(base.model_dump() | overrides)
    except ValidationError as exc:
        raise FraudAnalysisError(f"{where}: {_describe(exc)}") from None


def overrides_of(params: FraudParameters, base: FraudParameters) -> dict[str, Any]:
    """The tunable values of `params` that differ from `base`, JSON-able (what a set stores)."""
    mine, theirs = params.model_dump(mode="json"), base.model_dump(mode="json")
    return {name: mine[name] for name in TUNABLE if mine[name] != theirs[name]}


def active_parameters(settings: Settings) -> ActiveParameters:
    """The settings' parameters with the active approved set applied, read on the primary.

    Raises `FraudAnalysisError` when the stored set no longer validates (e.g. a settings change
    made one of its values contradict another): better no run than a run with unknown values.
    """
    engine = writer_engine(settings)
    try:
        with engine.connect() as conn:
            active = active_set(conn)
    except sa.exc.SQLAlchemyError as exc:
        raise FraudAnalysisError(
            f"cannot read the active parameter set on the primary ({exc.__class__.__name__}: "
            f"{getattr(exc, 'orig', None) or exc}); is the cluster up and migrated?"
        ) from None
    finally:
        engine.dispose()
    return in_force(settings.fraud, active)


def in_force(base: FraudParameters, active: ParameterSet | None) -> ActiveParameters:
    """`base` (the settings' parameters) with the approved set `active` applied."""
    if active is None:
        return ActiveParameters(base, None)
    params = apply_overrides(
        base, active.parameters, where=f"parameter set {active.id}", tunable_only=True
    )
    return ActiveParameters(params, active.id)
