"""`ledgerguard bench ...`: repeatable benchmarks whose JSON goes into benchmarks/README.md.

One module per family (`api`, `fraud`, `realtime`, `operations`), the options they share in
`options`; the commands are registered here, in the order `--help` lists them.
"""

from __future__ import annotations

import typer

from ledgerguard.cli.bench import api, fraud, operations, realtime

app = typer.Typer(help="Benchmarks of this machine's cluster and API.", no_args_is_help=True)
app.command()(api.ingest)
app.command()(fraud.analysis)
app.command()(realtime.realtime)
app.command("scorer-cpu")(realtime.scorer_cpu)
app.command("verdict-writes")(realtime.verdict_writes)
app.command("review-queue")(operations.review_queue)
app.command()(api.unauthenticated)
app.command()(operations.backup)
app.command("api-cpu")(api.api_cpu)
app.command("key-cache-refresh")(api.key_cache_refresh)
app.command()(fraud.detection)
