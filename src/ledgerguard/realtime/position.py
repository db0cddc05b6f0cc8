"""GTID positions of the stream, in both flavours' spelling.

A position is where the scorer has scored up to: MariaDB's list of the last GTID per replication
domain (`0-1-1042,1-2-7`, what `@slave_connect_state` takes) or MySQL's executed set
(`3e11fa47-...:1-1042`). The binlog follower advances it one transaction at a time, the
checkpoint stores its text, and `covers` tells whether a transaction was already part of a
snapshot of the replica (so the state rebuilt from that snapshot does not count it twice).

MySQL sets are kept as one interval per source (`uuid:1-N`): a replica fed by one primary at a
time executes each source's transactions without gaps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ledgerguard.db.dialect import Flavour
from ledgerguard.db.gtid import GtidSet


@dataclass
class GtidPosition:
    flavour: Flavour
    #: MariaDB: domain -> (server id, sequence); MySQL: source uuid -> (0, last transaction no)
    last: dict[str, tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def parse(cls, flavour: Flavour, text: str) -> GtidPosition:
        """A position from its text (empty text: the empty position), read by `GtidSet`."""
        return cls(flavour, GtidSet.parse(text).last())

    def text(self) -> str:
        if self.flavour is Flavour.MARIADB:
            return ",".join(
                f"{domain}-{server}-{seq}" for domain, (server, seq) in sorted(self.last.items())
            )
        return ",".join(f"{source}:1-{seq}" for source, (_, seq) in sorted(self.last.items()))

    def _key(self, gtid: str) -> tuple[str, int, int]:
        if self.flavour is Flavour.MARIADB:
            domain, server, seq = gtid.split("-")
            return domain, int(server), int(seq)
        source, number = gtid.rsplit(":", 1)
        return source.lower(), 0, int(number)

    def advance(self, gtid: str) -> None:
        """Record `gtid` (one transaction: `0-1-1043` or `uuid:1043`) as scored."""
        key, server, seq = self._key(gtid)
        self.last[key] = (server, seq)

    def covers(self, gtid: str) -> bool:
        """Whether `gtid` is at or before this position."""
        key, _, seq = self._key(gtid)
        return key in self.last and seq <= self.last[key][1]

    def behind(self, other: GtidPosition) -> int:
        """How many transactions `other` (e.g. the replica's executed set) has beyond this."""
        return sum(
            max(0, seq - self.last.get(key, (0, 0))[1]) for key, (_, seq) in other.last.items()
        )

    def copy(self) -> GtidPosition:
        return GtidPosition(self.flavour, dict(self.last))
