"""What a person sees during and after a load run, on stderr (stdout stays for `--json -`).

On a terminal a Rich `Live` panel is redrawn every tick; elsewhere (CI logs, pipes) one plain line
is printed every few seconds, since a live panel would either flood a log or print nothing.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ledgerguard.load.report import Snapshot

#: Seconds between plain progress lines when stderr is not a terminal.
PLAIN_EVERY = 5.0


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _mode(snap: Snapshot) -> str:
    if snap.rate:
        return f"open loop at {snap.rate:g}/s over {snap.users} connections"
    return f"{snap.users} users, closed loop"


def render_snapshot(snap: Snapshot) -> Group:
    """The live panel: throughput, latency now and overall, errors, client CPU."""
    phase = (
        f"warm-up {snap.elapsed:.0f}/{snap.warmup:.0f} s"
        if not snap.measuring
        else f"{min(snap.elapsed - snap.warmup, snap.duration):.0f}/{snap.duration:.0f} s"
    )
    title = Text.assemble(("ledgerguard load ", "bold"), f"— {_mode(snap)} — {phase}")
    table = Table(box=None, pad_edge=False, show_edge=False)
    for column in ("", "TPS", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(column, justify="right")
    now, run = snap.interval_latency_ms, snap.total_latency_ms
    table.add_row(
        "last tick",
        f"{snap.interval_tps:,.0f}",
        _ms(now.get("p50")),
        _ms(now.get("p95")),
        _ms(now.get("p99")),
    )
    table.add_row(
        "whole run",
        f"{snap.total_tps:,.0f}",
        _ms(run.get("p50")),
        _ms(run.get("p95")),
        _ms(run.get("p99")),
    )
    errors = {k: v for k, v in snap.statuses.items() if k != "201"}
    error_text = ", ".join(f"{k}: {v:,}" for k, v in sorted(errors.items())) if errors else "none"
    footer = Text.assemble(
        ("errors ", "bold red" if errors else "bold"),
        error_text,
        ("   missed ", "bold") if snap.rate else "",
        f"{snap.missed:,}" if snap.rate else "",
        ("   client CPU ", "bold"),
        f"{snap.client_cpu_percent:.0f} % of one core",
    )
    return Group(title, table, footer)


class LiveDisplay:
    """Context manager fed with `update(snapshot)`; pick plain lines when not on a terminal."""

    def __init__(self, console: Console, *, enabled: bool = True) -> None:
        self.console = console
        self.enabled = enabled
        self._live: Live | None = None
        self._last_plain = 0.0

    def __enter__(self) -> LiveDisplay:
        if self.enabled and self.console.is_terminal:
            self._live = Live(console=self.console, auto_refresh=False, transient=False)
            self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)

    def update(self, snap: Snapshot) -> None:
        if not self.enabled:
            return
        if self._live is not None:
            self._live.update(render_snapshot(snap), refresh=True)
            return
        now = time.monotonic()
        if now - self._last_plain >= PLAIN_EVERY:
            self._last_plain = now
            p99 = snap.interval_latency_ms.get("p99")
            self.console.print(
                f"[{snap.elapsed:5.1f} s] {snap.interval_tps:8,.0f} TPS  p99 {_ms(p99)} ms  "
                f"errors {snap.errors:,}  client CPU {snap.client_cpu_percent:.0f} %",
                highlight=False,
            )


def render_summary(report: dict[str, Any]) -> Table:
    """The final summary of `LoadReport.to_dict()` as a two-column table."""
    lat = report["latency_ms"]
    client = report["client"]
    table = Table(title="ledgerguard load — summary", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    mode = (
        f"open loop, target {report['rate_target']:g}/s, {report['users']} connections"
        if report["mode"] == "open"
        else f"closed loop, {report['users']} users"
    )
    table.add_row("target", f"{report['url']} ({mode}, {report['api_keys']} key(s))")
    table.add_row(
        "measured", f"{report['duration_s']:.1f} s after {report['warmup_s']:g} s warm-up"
    )
    table.add_row("committed", f"{report['ok']:,} ({report['tps']:,.1f} TPS)")
    table.add_row(
        "latency ms",
        "  ".join(f"{k} {_ms(lat.get(k))}" for k in ("p50", "p95", "p99", "p99.9", "max")),
    )
    errors = {k: v for k, v in report["status_counts"].items() if k != "201"}
    table.add_row(
        "errors",
        ", ".join(f"{k}: {v:,}" for k, v in errors.items()) if errors else "none",
    )
    if report["mode"] == "open":
        table.add_row("missed", f"{report['missed']:,} (schedule fell too far behind)")
    table.add_row(
        "client CPU",
        f"{client['cpu_seconds']:.2f} s = {client['cpu_percent_of_one_core']:.0f} % of one core, "
        f"{client['cpu_us_per_request'] or 0:.0f} µs/request ({client['event_loop']})",
    )
    return table
