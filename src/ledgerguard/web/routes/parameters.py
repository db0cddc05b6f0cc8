"""`/review/admin/parameters`: the fraud rules' parameters, changed with four eyes.

An administrator proposes a draft (every tunable `FraudParameters` field, prefilled with the
values in force), may backtest it against the current set on the last days (`fraud.backtest`,
which writes nothing), and a second administrator approves or rejects it. The approved set is
what the nightly analysis and the streaming scorer use from their next run
(`fraud.parameter_sets.active_parameters`). Every proposal and decision is an audit row.

Refused, nothing written: an unknown or invalid value (400, the validator's message); a form
opened before another set became active, or a proposal decided meanwhile (409); deciding one's
own proposal (409); an analyst (403).
"""

from __future__ import annotations

import typing
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Path, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from ledgerguard.db import audit
from ledgerguard.db.parameter_sets import (
    ParameterSet,
    ParameterSetError,
    active_set,
    decide_set,
    get_set,
    propose_set,
    recent_sets,
)
from ledgerguard.db.web_users import usernames
from ledgerguard.errors import LedgerGuardError
from ledgerguard.fraud.errors import FraudAnalysisError
from ledgerguard.fraud.parameter_sets import (
    TUNABLE,
    ActiveParameters,
    apply_overrides,
    in_force,
    overrides_of,
)
from ledgerguard.settings.fraud import FraudParameters
from ledgerguard.utc import utc_midnight
from ledgerguard.web.auth import CSRF_FIELD, AdminCsrfSession, AdminUser
from ledgerguard.web.backend import WebBackend, on_primary
from ledgerguard.web.templating import render

router = APIRouter(prefix="/admin/parameters", tags=["web"], include_in_schema=False)

#: Form fields that are not parameters.
_FORM_FIELDS = frozenset({CSRF_FIELD, "based_on", "note"})
#: The figures a backtest shows per configuration (see `fraud.evaluate.configuration_metrics`).
BACKTEST_FIGURES = ("analysed", "frauds", "flagged", "precision", "recall", "average_precision")


def _is_list(name: str) -> bool:
    return typing.get_origin(FraudParameters.model_fields[name].annotation) is tuple


def shown(params: FraudParameters, name: str) -> str:
    """A value as the form shows it (lists of windows as `1, 7, 30`)."""
    value = getattr(params, name)
    return ", ".join(str(v) for v in value) if isinstance(value, tuple) else str(value)


def form_overrides(form: dict[str, str]) -> dict[str, Any]:
    """The posted parameters (lists split at commas); every other name is kept so
    `apply_overrides` can refuse it by name."""
    values: dict[str, Any] = {}
    for name, value in form.items():
        if name in _FORM_FIELDS:
            continue
        text = value.strip()
        if name in FraudParameters.model_fields and _is_list(name):
            values[name] = [part.strip() for part in text.split(",") if part.strip()]
        else:
            values[name] = text
    return values


def _changes(before: FraudParameters, after: FraudParameters) -> dict[str, tuple[str, str]]:
    """name -> (before, after) of the tunable values that differ."""
    return {
        name: (shown(before, name), shown(after, name))
        for name in TUNABLE
        if getattr(before, name) != getattr(after, name)
    }


def _current(base: FraudParameters, active: ParameterSet | None) -> tuple[ActiveParameters, str]:
    """The parameters in force, and a warning if the active set no longer validates.

    Such a set (the settings or the code changed under it) stops the nightly run and the scorer
    (`active_parameters` raises); the page then starts from the settings, keeping the set's
    version so a new proposal can replace it.
    """
    try:
        return in_force(base, active), ""
    except FraudAnalysisError as exc:
        assert active is not None
        return ActiveParameters(base, active.id), (
            f"{exc}: the nightly analysis and the scorer refuse to run until a new set is "
            "approved; the form starts from the settings"
        )


def _diff(current: ActiveParameters, base: FraudParameters, item: ParameterSet) -> dict[str, Any]:
    try:
        return _changes(current.params, in_force(base, item).params)
    except FraudAnalysisError as exc:
        return {"(invalid)": ("-", str(exc))}


def _page_data(sync, *, base: FraudParameters) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    current, warning = _current(base, active_set(sync))
    sets = recent_sets(sync)
    pending = [(item, _diff(current, base, item)) for item in sets if item.status == "pending"]
    ids = {s.proposed_by for s in sets} | {s.decided_by for s in sets if s.decided_by}
    return {
        "current": current,
        "warning": warning,
        "pending": pending,
        "history": sets,
        "who": usernames(sync, ids),
    }


async def _page(
    request: Request,
    backend: WebBackend,
    *,
    message: str | None = None,
    error: str | None = None,
    code: int = 200,
    draft: dict[str, str] | None = None,
    backtest: dict[str, Any] | None = None,
) -> Response:
    base = backend.settings.fraud
    data = await on_primary(backend, _page_data, base=base)
    current: ActiveParameters = data["current"]
    rows = [
        {
            "name": name,
            "settings": shown(base, name),
            "value": (draft or {}).get(name, shown(current.params, name)),
            "changed": shown(base, name) != shown(current.params, name),
        }
        for name in TUNABLE
    ]
    return render(
        request,
        "parameters.html",
        status_code=code,
        rows=rows,
        message=message,
        error=error,
        backtest=backtest,
        figures=BACKTEST_FIGURES,
        **data,
    )


@router.get("")
async def parameters_page(request: Request, backend: WebBackend, user: AdminUser) -> Response:
    return await _page(request, backend)


def _propose(  # type: ignore[no-untyped-def]
    sync,
    *,
    base: FraudParameters,
    overrides: dict[str, Any],
    based_on: int | None,
    note: str,
    user_id: int,
    username: str,
    now: datetime,
) -> ParameterSet:
    current, _warning = _current(base, active_set(sync))
    if current.version != based_on:
        raise ParameterSetError(
            f"version {current.version or 'settings'} became active after this form was opened "
            f"(on version {based_on or 'settings'}): reload the page and propose again"
        )
    draft = apply_overrides(current.params, overrides, where="proposal", tunable_only=True)
    changes = _changes(current.params, draft)
    if not changes:
        raise FraudAnalysisError("proposal: it changes no parameter")
    proposal = propose_set(
        sync, parameters=overrides_of(draft, base), note=note, user_id=user_id, now=now
    )
    audit.record(
        sync,
        actor=username,
        action="params_propose",
        target=f"parameter_set:{proposal.id}",
        at=now,
        before={name: old for name, (old, _new) in changes.items()},
        after={name: new for name, (_old, new) in changes.items()},
    )
    return proposal


@router.post("")
async def propose(request: Request, backend: WebBackend, session: AdminCsrfSession) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    note = form.get("note", "").strip()[:500]
    based_on_text = form.get("based_on", "").strip()
    if based_on_text and not based_on_text.isdigit():
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "based_on must be a set version")
    try:
        proposal = await on_primary(
            backend,
            _propose,
            base=backend.settings.fraud,
            overrides=form_overrides(form),
            based_on=int(based_on_text) if based_on_text else None,
            note=note,
            user_id=session.user.id,
            username=session.user.username,
            now=datetime.now(UTC),
        )
    except FraudAnalysisError as exc:
        draft = {k: v for k, v in form.items() if k in TUNABLE}
        return await _page(
            request, backend, error=str(exc), code=status.HTTP_400_BAD_REQUEST, draft=draft
        )
    except ParameterSetError as exc:
        return await _page(request, backend, error=str(exc), code=status.HTTP_409_CONFLICT)
    return await _page(
        request,
        backend,
        message=f"proposed parameter set {proposal.id}: a second administrator approves it",
    )


@router.post("/{set_id}/backtest")
async def backtest_set(
    request: Request,
    backend: WebBackend,
    session: AdminCsrfSession,
    set_id: Annotated[int, Path(gt=0)],
    days: Annotated[int, Form(ge=1, le=31)] = 7,
) -> Response:
    """The set beside the one in force on the last `days` whole days (UTC); writes nothing."""
    from ledgerguard.fraud.backtest import backtest

    settings = backend.settings
    try:
        proposal, current = await on_primary(backend, _set_and_current, set_id=set_id)
        if proposal is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"there is no parameter set {set_id}")
        active = in_force(settings.fraud, current)
        draft = in_force(settings.fraud, proposal).params
        end = utc_midnight(datetime.now(UTC))
        result = await run_in_threadpool(
            backtest,
            active.settings(settings),
            start=end - timedelta(days=days),
            end=end,
            params=draft,
        )
    except LedgerGuardError as exc:
        return await _page(
            request, backend, error=f"cannot backtest: {exc}", code=status.HTTP_409_CONFLICT
        )
    result["set_id"], result["days"] = set_id, days
    result["rule_names"] = sorted(set(result["current"]["rules"]) | set(result["draft"]["rules"]))
    return await _page(request, backend, backtest=result)


def _set_and_current(sync, *, set_id: int) -> tuple[ParameterSet | None, ParameterSet | None]:  # type: ignore[no-untyped-def]
    return get_set(sync, set_id=set_id), active_set(sync)


def _decide(  # type: ignore[no-untyped-def]
    sync,
    *,
    base: FraudParameters,
    set_id: int,
    approve: bool,
    user_id: int,
    username: str,
    now: datetime,
) -> ParameterSet:
    decided, previous = decide_set(sync, set_id=set_id, user_id=user_id, approve=approve, now=now)
    target = f"parameter_set:{set_id}"
    if approve:
        changes = _changes(_current(base, previous)[0].params, in_force(base, decided).params)
        audit.record(
            sync,
            actor=username,
            action="params_approve",
            target=target,
            at=now,
            before={"version": previous.id if previous else None}
            | {name: old for name, (old, _new) in changes.items()},
            after={"version": decided.id} | {name: new for name, (_old, new) in changes.items()},
        )
    else:
        audit.record(
            sync,
            actor=username,
            action="params_reject",
            target=target,
            at=now,
            before={"status": "pending"},
            after={"status": "rejected", "parameters": decided.parameters},
        )
    return decided


@router.post("/{set_id}/{verdict}")
async def decide(
    request: Request,
    backend: WebBackend,
    session: AdminCsrfSession,
    set_id: Annotated[int, Path(gt=0)],
    verdict: Annotated[str, Path(pattern=r"^(approve|reject)$")],
) -> Response:
    try:
        decided = await on_primary(
            backend,
            _decide,
            base=backend.settings.fraud,
            set_id=set_id,
            approve=verdict == "approve",
            user_id=session.user.id,
            username=session.user.username,
            now=datetime.now(UTC),
        )
    except (ParameterSetError, FraudAnalysisError) as exc:
        return await _page(request, backend, error=str(exc), code=status.HTTP_409_CONFLICT)
    outcome = (
        "approved: the nightly analysis uses it from its next run, the streaming scorer "
        "from its next start"
        if decided.status == "approved"
        else "rejected"
    )
    return await _page(request, backend, message=f"parameter set {set_id} {outcome}")
