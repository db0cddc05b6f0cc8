"""Time the terminal profile's first pass on the replica; JSON on stdout.

`fraud.terminal_profile.replica_profile_days` for the interval `ledgerguard bench analysis`
scores (2025-01-31 to 2025-03-03 with its defaults), with the settings of `.env` in the current
directory (a cluster holding the bench's data set), as the nightly run would call it with
`LEDGERGUARD_FRAUD__TERMINAL_PROFILE_FEATURES=true`. Reports the seconds, rows read, (terminal,
day) rows and this process's peak RSS.

    cd <folder with the bench cluster's .env> && /path/to/.venv/bin/python benchmarks/profile_pass.py
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta

from ledgerguard.fraud.reader import ReplicaReader
from ledgerguard.fraud.terminal_profile import replica_profile_days
from ledgerguard.money import FxRates
from ledgerguard.settings import Settings


def peak_rss_mib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    return -1


def main() -> None:
    settings = Settings()
    params = settings.fraud.model_copy(update={"terminal_profile_features": True})
    start, end = datetime(2025, 1, 31, tzinfo=UTC), datetime(2025, 3, 3, tzinfo=UTC)
    load = os.getloadavg()
    began = time.perf_counter()
    with ReplicaReader(settings) as replica:
        table = replica_profile_days(
            replica,
            params,
            since=start - timedelta(days=params.terminal_profile_days),
            until=end,
            fx=FxRates(),
        )
        rows = replica.rows_read
    result = {
        "profile_pass_seconds": round(time.perf_counter() - began, 1),
        "rows_read": rows,
        "terminal_days": len(table),
        "peak_rss_mib": peak_rss_mib(),
        "load_average_at_start": load,
        "load_average_at_end": os.getloadavg(),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
