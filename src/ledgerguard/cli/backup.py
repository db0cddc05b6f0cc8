"""`ledgerguard backup ...` (create, list, verify, prune, the binlog archive) and
`ledgerguard restore` (point-in-time recovery into a new folder, `--replace` to make it the
cluster)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
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
from ledgerguard.errors import LedgerGuardError
from ledgerguard.utc import as_utc

app = typer.Typer(
    help="Hot backups of the replica, the binlog archive, verify and retention.",
    no_args_is_help=True,
)
archive_app = typer.Typer(
    help="The continuous binlog archive of the primary (mariadb-binlog / mysqlbinlog).",
    no_args_is_help=True,
)
app.add_typer(archive_app, name="archive")


@app.command()
def create(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Back up the replica with mariadb-backup: prepared, zstd-compressed, with a manifest."""
    from ledgerguard.backup.create import create_backup

    try:
        with err_console.status("backing up the replica (mariadb-backup, prepare, zstd)"):
            manifest = create_backup(settings_of(ctx), progress=say)
    except LedgerGuardError as exc:
        abort(str(exc))
    data = manifest.to_dict()
    data.pop("files")
    if as_json:
        print_json(data)
    else:
        say(f"[green]backup {manifest.id}[/] at GTID {manifest.gtid}")


@app.command(name="list")
def list_(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Every backup (newest first), its GTID, size and verification, and the recovery window."""
    from ledgerguard.backup.catalog import list_backups
    from ledgerguard.backup.plan import recovery_window

    settings = settings_of(ctx)
    try:
        backups = list_backups(settings)
        window = recovery_window(settings)
    except LedgerGuardError as exc:
        abort(str(exc))
    if as_json:
        print_json({"backups": [b.to_dict() for b in backups], "recovery_window": window})
        return
    table = Table(title="LedgerGuard backups", title_justify="left")
    for column in ("id", "finished", "GTID", "size", "stored", "verified"):
        table.add_column(column)
    for backup in backups:
        mark = backup.verified
        verified = "-" if not mark else ("[green]ok[/]" if mark.get("ok") else "[red]FAILED[/]")
        table.add_row(
            backup.id,
            backup.manifest.finished_at.isoformat(timespec="seconds"),
            backup.manifest.gtid,
            f"{backup.manifest.size / 2**20:.1f} MiB",
            f"{backup.manifest.stored_size / 2**20:.1f} MiB",
            verified,
        )
    err_console.print(table)
    say(
        f"recoverable from {window['from_time'] or '-'} to {window['to_time'] or '-'}"
        f" (GTID {window['from_gtid'] or '-'} to {window['to_gtid'] or '-'})"
    )


@app.command()
def verify(
    ctx: typer.Context,
    backup_id: Annotated[
        str | None, typer.Option("--backup", help="Backup id (default: the newest).")
    ] = None,
    chunk_size: Annotated[int, typer.Option(min=100, help="Rows per compared chunk.")] = 10_000,
    as_json: JsonFlag = False,
) -> None:
    """Restore a backup into a scratch server and compare it with the replica; exit 1 if bad."""
    from ledgerguard.backup.verify import verify_backup

    try:
        with err_console.status("verifying (restore into a scratch server, compare)"):
            result = verify_backup(
                settings_of(ctx), backup_id=backup_id, chunk_size=chunk_size, progress=say
            )
    except LedgerGuardError as exc:
        abort(str(exc))
    if as_json:
        print_json(result)


@app.command()
def prune(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show, delete nothing.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Apply retention (LEDGERGUARD_BACKUP_KEEP_DAILY / _WEEKLY) to backups and binlogs."""
    from ledgerguard.backup.retention import prune as prune_backups

    try:
        plan = prune_backups(settings_of(ctx), dry_run=dry_run)
    except LedgerGuardError as exc:
        abort(str(exc))
    if as_json:
        print_json(plan.to_dict() | {"dry_run": dry_run})
        return
    verb = "would delete" if dry_run else "deleted"
    say(
        f"kept {len(plan.keep)} backup(s); {verb} {len(plan.delete)} backup(s) and "
        f"{len(plan.delete_binlogs)} archived binlog file(s)/segment(s)"
    )


@app.command(name="stop-restored")
def stop_restored_command(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="A folder made by `ledgerguard restore`.")],
) -> None:
    """Stop the server of a restore folder (the folder is kept)."""
    from ledgerguard.backup.restore import stop_restored

    try:
        stopped = stop_restored(settings_of(ctx), folder.resolve())
    except LedgerGuardError as exc:
        abort(str(exc))
    say("stopped" if stopped else "was not running")


# --- the binlog archive -------------------------------------------------------------------------
@archive_app.command(name="up")
def archive_up(ctx: typer.Context) -> None:
    """Start the archiver (mariadb-binlog against the acting primary); idempotent."""
    from ledgerguard.backup.archiver import start_archiver

    try:
        started = start_archiver(settings_of(ctx))
    except LedgerGuardError as exc:
        abort(str(exc))
    say("binlog archiver started" if started else "binlog archiver already running")


@archive_app.command(name="down")
def archive_down(ctx: typer.Context) -> None:
    """Stop the archiver (the archive is kept; the next start continues it)."""
    from ledgerguard.backup.archiver import stop_archiver

    say("binlog archiver stopped" if stop_archiver(settings_of(ctx)) else "was not running")


@archive_app.command(name="status")
def archive_status(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Archiver process, source server, newest archived event and lag; exit 3 when down."""
    from ledgerguard.backup.archive import list_segments
    from ledgerguard.backup.archiver import archive_summary, archiver_status

    settings = settings_of(ctx)
    current = archiver_status(settings)
    show_status(
        current.to_dict() | {"segments": [s.to_dict() for s in list_segments(settings)]},
        healthy=current.up,
        as_json=as_json,
        render=lambda: say(archive_summary(current.to_dict())),
    )


# --- restore ------------------------------------------------------------------------------------
def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        abort(f"--to {text!r} is not an ISO 8601 time such as 2026-11-29T10:15:00Z")
    return as_utc(moment, assume_utc=True)


def restore(
    ctx: typer.Context,
    to: Annotated[
        str | None,
        typer.Option("--to", help="Restore to this time (ISO 8601; no offset = UTC)."),
    ] = None,
    to_gtid: Annotated[
        str | None, typer.Option("--to-gtid", help="Restore up to this GTID (included).")
    ] = None,
    folder: Annotated[
        Path | None,
        typer.Option(help="New folder to restore into (default <home>/restores/<time>)."),
    ] = None,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Make the restored data the cluster (asks; refused while the API runs).",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Point-in-time restore: the newest backup before the point, then the archived binlogs.

    Into a NEW folder on its own port (never over the running cluster), left running for
    inspection. A point outside what backups and archive cover is refused with that range.
    """
    from ledgerguard.api.server import running_pid
    from ledgerguard.backup.archiver import archiver_pid, start_archiver, stop_archiver
    from ledgerguard.backup.replace import external_replace_refusal, replace_cluster
    from ledgerguard.backup.restore import restore as restore_to

    settings = settings_of(ctx)
    if (to is None) == (to_gtid is None):
        abort("give exactly one of --to TIME and --to-gtid GTID")
    if to_gtid is not None:
        from ledgerguard.db.gtid import GtidSet

        try:
            GtidSet.parse(to_gtid)
        except ValueError as exc:
            abort(f"--to-gtid {to_gtid!r} is not a GTID position or set ({exc})")
    refusal = external_replace_refusal(settings) if replace else None
    if refusal:
        abort(refusal)
    if replace and running_pid(settings) is not None:
        abort("the API is running: stop it first (`ledgerguard api stop`), then --replace")
    try:
        with err_console.status("restoring (unpack the backup, replay archived binlogs)"):
            result = restore_to(
                settings,
                to_time=_parse_time(to) if to else None,
                to_gtid=to_gtid,
                folder=folder,
                progress=say,
            )
    except LedgerGuardError as exc:
        abort(str(exc))
    output = result.to_dict()
    if replace:
        if not yes:
            typer.confirm(
                f"Replace the cluster under {settings.state_dir} with the data restored to "
                f"GTID {result.gtid}? (its folders are moved aside, not deleted)",
                abort=True,
            )
        try:
            archiving = archiver_pid(settings) is not None
            stop_archiver(settings)
            aside = replace_cluster(
                settings,
                result.folder,
                api_running=running_pid(settings) is not None,
                progress=say,
            )
            if archiving:
                start_archiver(settings)
        except LedgerGuardError as exc:
            abort(str(exc))
        output["replaced"] = {"old_cluster": str(aside)}
        say(f"[green]the cluster now holds the data restored to GTID {result.gtid}[/]")
    elif result.external:
        say(
            f"inspect it on the scratch server: mysql -u{settings.backup_scratch_user} -p "
            f"-h{result.host} -P{result.port} (the next verify or restore empties it)"
        )
    else:
        say(
            f"inspect it: mariadb -uroot -p -h127.0.0.1 -P{result.port}; stop it with "
            f"`ledgerguard backup stop-restored {result.folder}`"
        )
    if as_json:
        print_json(output)
