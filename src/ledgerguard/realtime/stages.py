"""CPU time of the scorer's stages, so its cost per transaction can be measured and kept low.

Wall time on a shared 2-core machine says little (the scorer waits for the CPU as much as it
uses it); the CPU time of the thread doing the work does not depend on what else runs. The
scorer's loop charges each stage of a batch (`decode` in the binlog thread; `parse`, `labels`,
`state`, `score`, `verdicts`, `write` in the scoring thread) to one `StageClock`, which
`ledgerguard bench scorer-cpu` reports per transaction and the scorer publishes as
`ledgerguard_scorer_cpu_seconds{stage=...}`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

#: The stages, in the order a transaction goes through them.
STAGES = ("decode", "parse", "labels", "state", "score", "verdicts", "write")


@dataclass
class StageClock:
    """Thread CPU seconds per stage (`time.thread_time`: only the calling thread's work)."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        began = time.thread_time()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.thread_time() - began

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def per_transaction_us(self, transactions: int) -> dict[str, float]:
        """Microseconds of CPU per transaction, by stage and in total."""
        if transactions <= 0:
            return {}
        out = {name: round(1e6 * spent / transactions, 1) for name, spent in self.seconds.items()}
        out["total"] = round(1e6 * sum(self.seconds.values()) / transactions, 1)
        return out
