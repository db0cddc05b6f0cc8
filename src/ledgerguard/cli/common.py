"""Shared CLI plumbing: settings from the context, `abort`, stderr output, shared options.

Options used by more than one command are declared here once: `JsonFlag` as an `Annotated`
alias, and the load options that `load` and `bench ingest` share (users, duration, warm-up,
live) as `Annotated` aliases built per command, since each command reads its own environment
variables (`LEDGERGUARD_LOAD_USERS`, `LEDGERGUARD_BENCH_USERS`, ...).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from ledgerguard.settings import FraudSettings, Settings
from ledgerguard.settings.fraud import FraudParameters

#: Messages and progress go to stderr, so `--json` output on stdout stays machine-readable.
err_console = Console(stderr=True)

#: Exit code of a status command when something is down.
NOT_HEALTHY = 3

#: `--json`: print only JSON on stdout (messages stay on stderr).
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON only (for scripts).")]


def users_option(env_prefix: str, *, maximum: int, help: str) -> Any:
    """`--users/-u`: concurrent clients, from `<env_prefix>USERS` too."""
    return Annotated[
        int,
        typer.Option("--users", "-u", min=1, max=maximum, envvar=f"{env_prefix}USERS", help=help),
    ]


def duration_option(env_prefix: str, *, minimum: float, help: str) -> Any:
    """`--duration/-d`: measured seconds, from `<env_prefix>DURATION` too."""
    return Annotated[
        float,
        typer.Option("--duration", "-d", min=minimum, envvar=f"{env_prefix}DURATION", help=help),
    ]


def warmup_option(env_prefix: str, *, help: str) -> Any:
    """`--warmup`: unmeasured seconds of load first, from `<env_prefix>WARMUP` too."""
    return Annotated[float, typer.Option(min=0, envvar=f"{env_prefix}WARMUP", help=help)]


def live_option(env_prefix: str, *, help: str) -> Any:
    """`--live/--no-live`: live figures on stderr, from `<env_prefix>LIVE` too."""
    return Annotated[bool, typer.Option(envvar=f"{env_prefix}LIVE", help=help)]


def abort(message: str, code: int = 1) -> NoReturn:
    """Stop with a one-line message on stderr and no traceback (expected failures only)."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _down_servers(settings: Settings) -> list[str]:
    from ledgerguard.db.topology import acting_address
    from ledgerguard.processes import port_answers

    down = []
    for role in ("primary", "replica"):
        host, port = acting_address(settings, role)
        if not port_answers(host, port):
            down.append(f"the {role} ({host}:{port})")
    return down


def _down_message(down: list[str]) -> str:
    return (
        f"{' and '.join(down)} {'is' if len(down) == 1 else 'are'} not running: start the "
        "cluster with `ledgerguard cluster up` (`ledgerguard cluster status` shows its state)"
    )


def require_servers(settings: Settings) -> None:
    """Abort, naming the server and how to start it, when the primary or the replica does not
    answer: for commands that would otherwise find out only after minutes of work."""
    down = _down_servers(settings)
    if down:
        abort(_down_message(down))


def unreachable_message(exc: BaseException) -> str:
    """What to tell a user whose command failed because a database server cannot be reached
    (or, for a lock conflict that outlasted its retries, that the write was rolled back)."""
    from ledgerguard.db.retry import ATTEMPTS, is_lock_conflict

    first_line = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    if is_lock_conflict(exc):
        return (
            f"the primary rolled a write back over a lock another writer held ({first_line}), "
            f"{ATTEMPTS} times in a row; nothing of it was kept: run the command again"
        )
    try:
        down = _down_servers(Settings())
    except (ValidationError, OSError):
        down = []
    if down:
        return _down_message(down)
    return (
        f"a database server cannot be reached ({first_line}); check `ledgerguard cluster "
        "status` and start the cluster with `ledgerguard cluster up`"
    )


#: Client errors meaning "no server there": cannot connect (socket, TCP), gone away, lost.
_UNREACHABLE_CODES = {2002, 2003, 2006, 2013}


class LedgerGuardTyper(typer.Typer):
    """The root app: a command that needs a server which is down ends with one sentence naming
    the server and how to start it, never a driver traceback."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        import pymysql
        import sqlalchemy as sa

        try:
            return super().__call__(*args, **kwargs)
        except (
            sa.exc.OperationalError,
            sa.exc.InterfaceError,
            pymysql.err.OperationalError,
        ) as exc:
            err_console.print(
                f"[bold red]error:[/] {unreachable_message(exc)}", highlight=False, soft_wrap=True
            )
            raise SystemExit(1) from None


def load_settings() -> Settings:
    """Settings from the environment and `.env`, or a clear message naming what is missing."""
    try:
        return Settings()
    except ValidationError as exc:
        _invalid_configuration(exc)


def _invalid_configuration(exc: ValidationError) -> NoReturn:
    """Exit 2 with every problem of the configuration named (a missing variable by name)."""
    problems = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "settings"
        if error["type"] == "missing":
            problems.append(f"{name.upper()} is not set")
        else:
            problems.append(f"{name}: {error['msg']}")
    abort(
        "invalid configuration: "
        + "; ".join(problems)
        + " (copy .env.example to .env, or set the variables)",
        code=2,
    )


def settings_of(ctx: typer.Context) -> Settings:
    """The `Settings` built once by the root callback."""
    if ctx.obj is None:
        ctx.obj = load_settings()
    return ctx.obj


def fraud_parameters_of(ctx: typer.Context) -> FraudParameters:
    """The fraud engine's parameters for a command that reaches no server (scoring or training
    on files in memory): those of the `Settings` when already built, else read alone
    (`FraudSettings`), so no database password has to be set; a bad `LEDGERGUARD_FRAUD__*`
    value is still an error that names it."""
    if ctx.obj is not None:
        return ctx.obj.fraud
    try:
        return FraudSettings().fraud
    except ValidationError as exc:
        _invalid_configuration(exc)


def print_json(data: Any) -> None:
    """JSON, and only JSON, on stdout."""
    typer.echo(json.dumps(data, indent=2, default=str))


def show_status(data: Any, *, healthy: bool, as_json: bool, render: Callable[[], None]) -> None:
    """The end of every status command: JSON on stdout or `render()` on stderr, then exit code
    `NOT_HEALTHY` (3) when something is down, so scripts can wait on it."""
    if as_json:
        print_json(data)
    else:
        render()
    if not healthy:
        raise typer.Exit(NOT_HEALTHY)


def progress_bar() -> Progress:
    """A transient progress bar on stderr (description, bar, done/total, elapsed)."""
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )


def up_down(up: bool) -> str:
    """A coloured state word for status tables."""
    return "[green]up[/]" if up else "[red]down[/]"


def say(message: str) -> None:
    err_console.print(message, highlight=False, soft_wrap=True)
