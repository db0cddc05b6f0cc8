"""Which users a scorer process owns: the partition `K/N` (`user_id % N == K`).

Its own module because a partition names more than the state it selects: the scorer's pid,
log and status files, its checkpoint row and the CLI's `--partition` are keyed on it, and
what reads those (`ledgerguard up` / `down` / `status`) should not import the fraud engine
the state is scored with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Partition:
    """`K/N`: this scorer keeps and scores the users with `user_id % N == K`."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Partition:
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            raise ValueError(f"partition must look like K/N, e.g. 0/2 (got {text!r})") from None
        if count < 1 or not 0 <= index < count:
            raise ValueError(f"partition K/N needs 0 <= K < N (got {text!r})")
        return cls(index, count)

    @property
    def name(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, user_id: np.ndarray) -> np.ndarray:
        return user_id % self.count == self.index
