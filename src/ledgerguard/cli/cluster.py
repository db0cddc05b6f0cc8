"""`ledgerguard cluster ...`: the local MariaDB primary + GTID replica."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ledgerguard.cli.common import (
    JsonFlag,
    abort,
    err_console,
    print_json,
    say,
    settings_of,
    show_status,
)
from ledgerguard.cluster.errors import ClusterError
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.cluster.status import ClusterStatus
from ledgerguard.db.dialect import Flavour
from ledgerguard.errors import LedgerGuardError

app = typer.Typer(help="Run the local primary + replica cluster.", no_args_is_help=True)


def _cluster(ctx: typer.Context) -> LocalCluster:
    return LocalCluster(settings_of(ctx))


@app.command()
def up(ctx: typer.Context) -> None:
    """Start (creating on first use) both servers, provision, migrate and wire replication.

    Idempotent: a running cluster is left as it is; data survives `down` and a reboot.
    """
    cluster = _cluster(ctx)
    try:
        result = cluster.up(progress=say)
    except LedgerGuardError as exc:
        abort(str(exc))
    if result.already_running:
        say("cluster already running")
    say(
        f"[green]cluster up[/]: primary 127.0.0.1:{cluster.specs['primary'].port}, "
        f"replica 127.0.0.1:{cluster.specs['replica'].port}, state in {cluster.settings.state_dir}"
    )


@app.command()
def down(ctx: typer.Context) -> None:
    """Stop both servers cleanly (data kept)."""
    try:
        stopped = _cluster(ctx).down(progress=say)
    except ClusterError as exc:
        abort(str(exc))
    if not stopped:
        say("cluster was not running")


@app.command()
def reset(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    start: Annotated[bool, typer.Option(help="Start a fresh cluster after wiping.")] = True,
) -> None:
    """Stop both servers, WIPE their data, and (by default) provision a fresh cluster."""
    cluster = _cluster(ctx)
    if not yes:
        typer.confirm(f"Wipe all data under {cluster.settings.state_dir}?", abort=True)
    try:
        cluster.reset(progress=say)
        if start:
            cluster.up(progress=say)
            say("[green]fresh cluster up[/]")
    except LedgerGuardError as exc:
        abort(str(exc))


@app.command()
def provision(
    ctx: typer.Context,
    flavour: Annotated[
        Flavour | None,
        typer.Option(help="Expected server flavour (detected from SELECT VERSION() if omitted)."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the servers.")] = 120.0,
) -> None:
    """Provision servers we do not run (Compose containers): accounts, GTID replication, schema.

    Connects as root over TCP to LEDGERGUARD_PRIMARY_HOST/PORT and LEDGERGUARD_REPLICA_HOST/PORT.
    Idempotent.
    """
    from ledgerguard.cluster.remote import provision_remote

    try:
        found = provision_remote(
            settings_of(ctx), expected_flavour=flavour, timeout=timeout, progress=say
        )
    except LedgerGuardError as exc:
        abort(str(exc))
    say(f"[green]provisioned[/] ({found})")


@app.command()
def status(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Both servers: up/down, version, GTID positions, replication threads, lag, last error.

    Exit code 0 when healthy, 3 when not (so scripts can wait on it).
    """
    try:
        current = _cluster(ctx).status()
    except ClusterError as exc:
        abort(str(exc))
    show_status(
        current.to_dict(),
        healthy=current.healthy,
        as_json=as_json,
        render=lambda: render_status(current),
    )


@app.command()
def failover(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan, change nothing.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            help="Promote even when acknowledged transactions may be lost, or when a remote "
            "old primary (not run by this machine) could not be set read-only."
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the replica to catch up.")
    ] = 30.0,
    as_json: JsonFlag = False,
) -> None:
    """Promote the replica to primary (switchover if the primary is up, failover if not).

    Refuses when the replica may lack acknowledged transactions (GTID / semi-sync check), or when
    the old primary is remote (not run by this machine) and cannot be set read-only, unless
    --force. The API follows by itself (it writes to whichever server is writable).
    """
    from ledgerguard.cluster import failover as failover_lib

    cluster = _cluster(ctx)
    try:
        plan = (
            failover_lib.plan(cluster)
            if dry_run
            else failover_lib.failover(cluster, force=force, timeout=timeout, progress=say)
        )
    except LedgerGuardError as exc:
        abort(str(exc))
    if as_json:
        print_json(plan.to_dict())
        return
    say(f"{'plan' if dry_run else 'done'}: {plan.old_primary} → {plan.new_primary}")
    for number, step in enumerate(plan.steps, 1):
        say(f"  {number}. {step}")
    if dry_run and plan.refusal:
        say(f"[red]would refuse[/]: {plan.refusal} (--force overrides)")


@app.command()
def checksum(
    ctx: typer.Context,
    chunk_size: Annotated[int, typer.Option(min=100, help="Rows per compared chunk.")] = 10_000,
    as_json: JsonFlag = False,
) -> None:
    """Compare the application tables on primary and replica; exit 1 on any difference."""
    try:
        report = _cluster(ctx).checksum(chunk_size=chunk_size)
    except ClusterError as exc:
        abort(str(exc))
    if as_json:
        print_json(report.to_dict())
    else:
        for table, chunks in report.tables.items():
            say(f"{table}: {chunks} chunk(s)")
        for diff in report.differences:
            say(
                f"[red]DIFFERENT[/] {diff.table} key [{diff.lower}, {diff.upper}): primary "
                f"{diff.primary_rows} rows, replica {diff.replica_rows} rows"
            )
        say(
            f"[green]clean[/]: {report.rows} rows identical"
            if report.clean
            else f"[red]{len(report.differences)} chunk(s) differ[/]"
        )
    if not report.clean:
        raise typer.Exit(1)


def render_status(current: ClusterStatus) -> None:
    """A Rich table of `current` on stderr."""
    table = Table(title="LedgerGuard cluster", title_justify="left")
    table.add_column("")
    table.add_column("primary")
    table.add_column("replica")
    p, r = current.primary, current.replica
    repl = r.replication

    def yes_no(value: bool | None) -> str:
        return "-" if value is None else ("[green]yes[/]" if value else "[red]no[/]")

    rows = [
        ("up", yes_no(p.up), yes_no(r.up)),
        ("port", str(p.port), str(r.port)),
        ("pid", str(p.pid or "-"), str(r.pid or "-")),
        ("version", p.version or "-", r.version or "-"),
        ("read only", yes_no(p.read_only), yes_no(r.read_only)),
        ("GTID executed", p.gtid_executed or "-", r.gtid_executed or "-"),
        ("semi-sync acknowledged", yes_no(p.semi_sync_active), "-"),
        ("replicating from", "-", repl.source if repl and repl.source else "-"),
        ("IO thread", "-", yes_no(repl.io_running) if repl else "-"),
        ("SQL thread", "-", yes_no(repl.sql_running) if repl else "-"),
        (
            "seconds behind",
            "-",
            str(repl.seconds_behind) if repl and repl.seconds_behind is not None else "-",
        ),
        (
            "last error",
            p.error or "-",
            r.error or (repl and (repl.last_io_error or repl.last_sql_error)) or "-",
        ),
    ]
    for row in rows:
        table.add_row(*row)
    err_console.print(table)
    err_console.print("[green]healthy[/]" if current.healthy else "[red]not healthy[/]")
