"""Promote the replica: planned switchover when the primary is up, failover when it is not.

The promotion itself is always the same: the replica applies everything it has received, stops
replicating (`STOP SLAVE`, `RESET SLAVE ALL`), becomes writable (`read_only=OFF`) and starts
waiting for semi-sync acknowledgements; `topology.json` records the swap so `cluster up`, `status`
and later restarts treat it as the primary.

Safety rule: promote only a replica that provably has every committed transaction.

* Old primary **up** (switchover): it is made read-only and its event scheduler (the heartbeat
  writer, which read_only does not stop) is switched off first, so nothing new commits, and the
  replica must reach the old primary's GTID position within the timeout; the old primary then
  follows the new one by GTID at once.
* Old primary **running but not answering** (SIGSTOP, hung): it is *fenced* first, stopped by
  its pid (SIGTERM, SIGKILL after `LEDGERGUARD_FENCE_TIMEOUT` seconds), so it can never take a
  write again once the replica is promoted; then it is treated as down. Every admin connection has
  read timeouts, so a failover finishes (or refuses) within a bounded time.
* Old primary **remote** (no datadir of it under the state directory: not a process this
  machine runs, so it cannot be stopped by pid): it is reached over TCP instead. If it answers it
  is made read-only like a local one; if it does not, nothing proves it is not still taking
  writes somewhere, so failover refuses unless `--force` (the message says what to check).
* Old primary **down** (failover): with semi-synchronous replication (AFTER_SYNC) every
  acknowledged commit is in the replica's relay log, *unless* the primary had fallen back to
  asynchronous mode before it died. Its error log says so ("Semi-sync replication switched OFF"
  after the last "switched ON"), so we refuse then, and when semi-sync is disabled, unless
  `--force`. When the old primary comes back, `cluster up` makes it a replica of the new one; if it
  holds transactions the new primary lacks, replication stops with a GTID error instead of
  diverging silently.

The swap is recorded with an epoch (`ledgerguard.db.topology`); the API and every batch or admin
path resolve the primary from that record, never by node order (see `ledgerguard.api.topology`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pymysql

from ledgerguard.cluster.admin import Endpoint, admin_connection, run
from ledgerguard.cluster.errors import ClusterError, ReplicationError
from ledgerguard.cluster.heartbeat import enable_heartbeat_writer
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.cluster.replica import (
    executed_gtids,
    flavour_of,
    follow_primary,
    replica_status,
    wait_until_applied,
)
from ledgerguard.cluster.replication import stop_replica
from ledgerguard.cluster.spec import ServerSpec
from ledgerguard.db.dialect import Statement
from ledgerguard.db.topology import RecordedTopology, load_topology, save_topology

_SWITCH = re.compile(r"Semi-sync replication switched (ON|OFF)")
_STARTUP = re.compile(r"ready for connections")


class FailoverRefused(ClusterError):
    """Promoting now could lose acknowledged transactions (use --force to accept that)."""


@dataclass
class FailoverPlan:
    old_primary: str
    new_primary: str
    old_primary_up: bool
    steps: list[str] = field(default_factory=list)
    refusal: str | None = None
    #: the old primary's process runs but does not answer: it is stopped by pid before promoting
    fence: bool = False
    #: the old primary is not a process this machine runs: reached over TCP, never fenced by pid
    remote: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "old_primary": self.old_primary,
            "new_primary": self.new_primary,
            "old_primary_up": self.old_primary_up,
            "fence": self.fence,
            "remote": self.remote,
            "steps": self.steps,
            "refusal": self.refusal,
        }


def semi_sync_was_on_at_crash(error_log: Path) -> bool | None:
    """From the old primary's error log: was semi-sync on during its last run?

    None when the log says nothing (semi-sync never switched during that run).
    """
    try:
        lines = error_log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    last_start = max((i for i, line in enumerate(lines) if _STARTUP.search(line)), default=0)
    state = None
    for line in lines[last_start:]:
        match = _SWITCH.search(line)
        if match:
            state = match.group(1) == "ON"
    return state


def plan(cluster: LocalCluster) -> FailoverPlan:
    """What `failover` would do, and whether it would refuse."""
    old, new = cluster.specs["primary"], cluster.specs["replica"]
    old_server, new_server = cluster.server("primary"), cluster.server("replica")
    if not new_server.is_running():
        raise ClusterError(
            f"the replica ({new.base_dir.name}, port {new.port}) is not running: there is nothing "
            "to promote; start it with `ledgerguard cluster up`"
        )
    remote = not old_server.initialized
    bound = cluster.settings.fence_timeout
    if remote:
        unreachable = _remote_problem(old, cluster.root_password, timeout=bound)
        running, answers = unreachable is None, unreachable is None
    else:
        running = old_server.is_running()
        answers = running and old_server.answers(timeout=bound)
    result = FailoverPlan(
        old_primary=f"{old.host}:{old.port}" if remote else f"{old.base_dir.name}:{old.port}",
        new_primary=f"{new.base_dir.name}:{new.port}",
        old_primary_up=answers,
        fence=running and not answers,
        remote=remote,
    )
    if remote and not answers:
        result.refusal = remote_refusal(result.old_primary, old, unreachable)
    if result.fence:
        result.steps.append(
            f"the old primary {result.old_primary} runs but does not answer: stop it by its pid "
            f"(SIGTERM, SIGKILL after {cluster.settings.fence_timeout:g} s) before promoting"
        )
    if result.old_primary_up:
        result.steps += [
            f"set read_only=ON on the old primary {result.old_primary} (no new commits)",
            "wait until the replica has applied the old primary's GTID position",
        ]
    else:
        result.steps.append(f"the old primary {result.old_primary} is down: check semi-sync")
        lossy = None
        if cluster.settings.semi_sync_timeout_ms == 0:
            lossy = (
                "semi-synchronous replication is disabled, so the replica may lack transactions "
                "the old primary acknowledged"
            )
        elif semi_sync_was_on_at_crash(old.error_log) is False:
            lossy = (
                "the old primary had switched to asynchronous replication before it stopped "
                f"(see {old.error_log}), so the replica may lack acknowledged transactions"
            )
        if lossy:
            result.refusal = f"{result.refusal}; and {lossy}" if result.refusal else lossy
    result.steps += [
        f"apply everything the replica {result.new_primary} received, then STOP SLAVE and "
        "RESET SLAVE ALL",
        f"SET GLOBAL read_only=OFF and semi-sync waiting on {result.new_primary}",
        "record the new topology (topology.json) so restarts keep the roles",
    ]
    if result.old_primary_up:
        result.steps.append(
            f"make {result.old_primary} a read-only GTID replica of the new primary"
        )
    else:
        result.steps.append(
            f"when {result.old_primary} comes back, `cluster up` makes it a replica of the new one"
        )
    return result


def _remote_problem(spec: ServerSpec, password: str, *, timeout: float) -> str | None:
    """None when root can use the remote old primary over TCP (so it can be made read-only),
    else why not. Bounded by `timeout` (a host that accepts and never answers)."""
    try:
        with admin_connection(
            _endpoint(spec), password=password, connect_timeout=timeout, read_timeout=timeout
        ) as conn:
            run(conn, Statement("SELECT 1"))
    except (ClusterError, pymysql.MySQLError) as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


def remote_refusal(name: str, spec: ServerSpec, problem: str | None) -> str:
    """Why a remote old primary that cannot be made read-only blocks the promotion, and what
    the operator should check before `--force`."""
    return (
        f"the old primary {name} is not a server this machine runs (no datadir in "
        f"{spec.base_dir}), so it cannot be stopped by its pid, and it could not be reached to "
        f"set it read-only ({problem}); it may still take writes after the promotion. Check "
        f"that it is stopped or read-only (`SET GLOBAL read_only=ON` on {name}) and that no "
        "client can still write to it"
    )


def _endpoint(spec: ServerSpec) -> Endpoint:
    return Endpoint(spec.role, spec.host, spec.port)


def _admin_target(spec: ServerSpec, *, remote: bool) -> ServerSpec | Endpoint:
    """A local server by its socket; a remote one over TCP."""
    return _endpoint(spec) if remote else spec


def failover(
    cluster: LocalCluster,
    *,
    force: bool = False,
    timeout: float = 30.0,
    progress: Callable[[str], None] = lambda _: None,
) -> FailoverPlan:
    """Promote the replica (see module docstring); returns the plan that was carried out."""
    steps = plan(cluster)
    if steps.refusal and not force:
        raise FailoverRefused(f"refusing to fail over: {steps.refusal}; --force to do it anyway")
    password = cluster.root_password
    old, new = cluster.specs["primary"], cluster.specs["replica"]
    bound = cluster.settings.fence_timeout
    old_target = _admin_target(old, remote=steps.remote)
    if steps.old_primary_up:
        try:
            with admin_connection(
                old_target, password=password, connect_timeout=bound, read_timeout=bound
            ) as conn:
                run(conn, Statement("SET GLOBAL read_only = ON"))
                # read_only does not stop root-defined events: the heartbeat writer would commit
                # transactions the new primary never gets, and the old primary could not follow
                run(conn, Statement("SET GLOBAL event_scheduler = OFF"))
                target = executed_gtids(conn)
        except (ClusterError, pymysql.MySQLError) as exc:
            if steps.remote:  # no pid to stop: the same rule as a remote that never answered
                if not force:
                    raise FailoverRefused(
                        "refusing to fail over: "
                        + remote_refusal(steps.old_primary, old, str(exc).splitlines()[0])
                        + "; --force to do it anyway"
                    ) from None
                steps.old_primary_up = False
            else:
                # it stopped answering between the plan and now: fence it like a stalled one
                progress(f"the old primary did not become read-only ({exc}): fencing it")
                steps.old_primary_up, steps.fence = False, True
        else:
            progress(f"old primary read-only at GTID {target}")
            with admin_connection(new, password=password) as conn:
                try:
                    wait_until_applied(conn, target, timeout=timeout)
                except ReplicationError:
                    if not force:
                        with admin_connection(old_target, password=password) as old_conn:
                            run(old_conn, Statement("SET GLOBAL read_only = OFF"))
                            run(old_conn, Statement("SET GLOBAL event_scheduler = ON"))
                        raise
    if steps.fence:
        if not cluster.server("primary").fence(timeout=bound):
            raise FailoverRefused(
                f"the old primary {steps.old_primary} could not be stopped; refusing to promote "
                "while it may still take writes"
            )
        progress(f"fenced the old primary {steps.old_primary} (stopped by its pid)")
    with admin_connection(new, password=password) as conn:
        flavour = flavour_of(conn)
        status = replica_status(conn, flavour)
        if status.gtid_io_pos:
            try:
                wait_until_applied(conn, status.gtid_io_pos, timeout=timeout)
            except ReplicationError:
                if not force:
                    raise
        run(conn, stop_replica(flavour))
        run(conn, Statement("RESET SLAVE ALL"))
        run(conn, Statement("SET GLOBAL read_only = OFF"))
        if cluster.settings.semi_sync_timeout_ms:
            run(
                conn,
                Statement(
                    "SET GLOBAL rpl_semi_sync_master_timeout = %s",
                    (cluster.settings.semi_sync_timeout_ms,),
                ),
            )
            run(conn, Statement("SET GLOBAL rpl_semi_sync_master_enabled = ON"))
        enable_heartbeat_writer(conn)
    recorded = load_topology(cluster.settings)
    save_topology(
        cluster.settings,
        RecordedTopology(swapped=not cluster.swapped, epoch=recorded.epoch + 1),
    )
    progress(f"promoted {steps.new_primary}: it takes writes now")
    promoted = LocalCluster(cluster.settings)
    for role in ("primary", "replica"):
        spec = promoted.specs[role]
        if spec.base_dir.is_dir():  # not for a remote old primary
            spec.config_file.write_text(spec.render_config())
    if steps.old_primary_up:
        demoted = _admin_target(promoted.specs["replica"], remote=steps.remote)
        with admin_connection(demoted, password=password) as conn:
            run(conn, Statement("SET GLOBAL rpl_semi_sync_master_enabled = OFF"))
            follow_primary(
                conn,
                cluster.settings,
                primary_host=promoted.specs["primary"].host,
                primary_port=promoted.specs["primary"].port,
                progress=progress,
            )
    return steps
