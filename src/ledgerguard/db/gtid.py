"""GTID sets of both flavours: what a server, a backup or an archived binlog file holds.

MariaDB and MySQL name a transaction differently, and so what "everything up to here" means:

=====================  ==========================================  ==================================
what                   MariaDB 10.11                               MySQL 8.4
=====================  ==========================================  ==================================
one transaction        `domain-server-seq` (`0-1-42`)              `source_uuid:number` (`3e11...:42`)
a server's history     a *position*: the last GTID per domain      a *set*: intervals per source
                       (`0-1-42,1-2-7`), everything before it in   (`3e11...:1-42:45-50,4f22...:1-9`),
                       the domain is implied                       gaps possible
a binlog file's start  `Gtid_list` event                           `Previous_gtids` event
=====================  ==========================================  ==================================

`GtidSet` is one immutable value for both: parsed from either spelling, it answers "does this
history contain that one?" (`covers`), grows by transactions (`with_gtids`) and merges
(`union`). The binlog archive's bookkeeping (`ledgerguard.backup`) and the scorer's position
(`ledgerguard.realtime.position`) both build on it. MySQL 8.4's tagged GTIDs
(`uuid:tag:number`) are parsed and printed, each tag being its own source.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ledgerguard.db.dialect import Flavour

_MARIADB_ITEM = re.compile(r"^\d+-\d+-\d+$")
_UUID = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$")
_TAG = re.compile(r"^[a-z_][a-z0-9_]{0,31}$")


@dataclass(frozen=True, order=True)
class Gtid:
    """One MariaDB transaction, `domain-server-seq`."""

    domain: int
    server: int
    seq: int

    @property
    def source(self) -> str:
        """The stream its sequence numbers count in: the replication domain."""
        return str(self.domain)

    def __str__(self) -> str:
        return f"{self.domain}-{self.server}-{self.seq}"

    @classmethod
    def parse(cls, text: str) -> Gtid:
        domain, server, seq = (int(part) for part in text.strip().split("-"))
        return cls(domain, server, seq)


@dataclass(frozen=True, order=True)
class UuidGtid:
    """One MySQL transaction, `source_uuid:number` (the source may carry a tag: `uuid:tag`)."""

    source: str
    seq: int

    def __str__(self) -> str:
        return f"{self.source}:{self.seq}"

    @classmethod
    def parse(cls, text: str) -> UuidGtid:
        source, number = text.strip().lower().rsplit(":", 1)
        return cls(_source(source), int(number))


AnyGtid = Gtid | UuidGtid
Intervals = tuple[tuple[int, int], ...]  # sorted, disjoint, inclusive


def _source(text: str) -> str:
    """`3E11FA47...` / `uuid:tag` → the canonical lower-case, dashed spelling; ValueError else."""
    uuid, _, tag = text.strip().lower().partition(":")
    bare = uuid.replace("-", "")
    if not _UUID.match(uuid) or len(bare) != 32:
        raise ValueError(f"{text!r} is not a server UUID")
    if tag and not _TAG.match(tag):
        raise ValueError(f"{tag!r} is not a GTID tag")
    dashed = f"{bare[:8]}-{bare[8:12]}-{bare[12:16]}-{bare[16:20]}-{bare[20:]}"
    return f"{dashed}:{tag}" if tag else dashed


def _merge(intervals: Iterable[tuple[int, int]]) -> Intervals:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


def _inside(intervals: Intervals, start: int, end: int) -> bool:
    return any(low <= start and end <= high for low, high in intervals)


class GtidSet:
    """An immutable GTID history of one flavour (empty: of none yet); see the module docstring."""

    __slots__ = ("_intervals", "_last")

    def __init__(
        self,
        *,
        last: dict[int, Gtid] | None = None,
        intervals: dict[str, Intervals] | None = None,
    ) -> None:
        if last and intervals:
            raise ValueError("a GTID set holds MariaDB or MySQL GTIDs, not both")
        self._last: dict[int, Gtid] = dict(last or {})
        self._intervals: dict[str, Intervals] = {k: v for k, v in (intervals or {}).items() if v}

    # --- building -------------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str) -> GtidSet:
        """Either spelling (`0-1-5,1-2-9` or `uuid:1-5:7,uuid2:1-3`); '' is the empty set.

        ValueError names the item that is neither.
        """
        last: dict[int, Gtid] = {}
        intervals: dict[str, list[tuple[int, int]]] = {}
        for item in (part.strip() for part in text.replace("\n", "").split(",")):
            if not item:
                continue
            if _MARIADB_ITEM.match(item):
                gtid = Gtid.parse(item)
                last[gtid.domain] = gtid
                continue
            uuid, *rest = item.split(":")
            source = _source(uuid)
            if not rest:
                raise ValueError(f"{item!r} is not a GTID set item (no intervals)")
            for token in rest:
                low, _, high = token.partition("-")
                if not low.isdigit():  # a tag: the following intervals are `uuid:tag`'s
                    source = _source(f"{uuid}:{token}")
                    continue
                if high and not high.isdigit():
                    raise ValueError(f"{item!r}: {token!r} is not an interval")
                start, end = int(low), int(high or low)
                if start < 1 or end < start:
                    raise ValueError(f"{item!r}: {token!r} is not an interval")
                intervals.setdefault(source, []).append((start, end))
        return cls(last=last, intervals={k: _merge(v) for k, v in intervals.items()})

    @classmethod
    def of(cls, gtids: Iterable[AnyGtid]) -> GtidSet:
        return cls().with_gtids(gtids)

    def with_gtids(self, gtids: Iterable[AnyGtid]) -> GtidSet:
        """This set plus `gtids` (MariaDB: each becomes its domain's last GTID, in order)."""
        last = dict(self._last)
        added: dict[str, list[tuple[int, int]]] = {}
        for gtid in gtids:
            if isinstance(gtid, Gtid):
                last[gtid.domain] = gtid
            else:
                added.setdefault(gtid.source, []).append((gtid.seq, gtid.seq))
        intervals = dict(self._intervals)
        for source, new in added.items():
            intervals[source] = _merge([*intervals.get(source, ()), *new])
        return GtidSet(last=last, intervals=intervals)

    def union(self, other: GtidSet) -> GtidSet:
        """Both histories (MariaDB: per domain the GTID with the higher sequence number)."""
        last = dict(self._last)
        for domain, gtid in other._last.items():
            if domain not in last or gtid.seq > last[domain].seq:
                last[domain] = gtid
        intervals = dict(self._intervals)
        for source, more in other._intervals.items():
            intervals[source] = _merge([*intervals.get(source, ()), *more])
        return GtidSet(last=last, intervals=intervals)

    # --- reading --------------------------------------------------------------------------------
    @property
    def flavour(self) -> Flavour | None:
        if self._last:
            return Flavour.MARIADB
        return Flavour.MYSQL if self._intervals else None

    def contains(self, gtid: AnyGtid) -> bool:
        if isinstance(gtid, Gtid):
            mine = self._last.get(gtid.domain)
            return mine is not None and gtid.seq <= mine.seq
        return _inside(self._intervals.get(gtid.source, ()), gtid.seq, gtid.seq)

    def covers(self, other: GtidSet) -> bool:
        """Whether every transaction of `other` is in this history."""
        return all(
            domain in self._last and self._last[domain].seq >= gtid.seq
            for domain, gtid in other._last.items()
        ) and all(
            _inside(self._intervals.get(source, ()), start, end)
            for source, spans in other._intervals.items()
            for start, end in spans
        )

    def last(self) -> dict[str, tuple[int, int]]:
        """Per source its newest transaction: MariaDB `domain → (server, seq)`, MySQL
        `source → (0, highest number)` (what a follower that advances one by one keeps)."""
        if self._last:
            return {str(d): (g.server, g.seq) for d, g in self._last.items()}
        return {source: (0, spans[-1][1]) for source, spans in self._intervals.items()}

    @property
    def mariadb_position(self) -> dict[int, Gtid]:
        """MariaDB's view: domain → its last GTID (empty for a MySQL set)."""
        return dict(self._last)

    @property
    def intervals(self) -> dict[str, Intervals]:
        """MySQL's view: source → its intervals (empty for a MariaDB position)."""
        return dict(self._intervals)

    def __str__(self) -> str:
        """The server's own spelling (what `--exclude-gtids`, `--start-position` take)."""
        if self._last:
            return ",".join(str(self._last[d]) for d in sorted(self._last))
        return ",".join(
            source + "".join(f":{a}" if a == b else f":{a}-{b}" for a, b in self._intervals[source])
            for source in sorted(self._intervals)
        )

    def __repr__(self) -> str:
        return f"GtidSet({str(self)!r})"

    def __bool__(self) -> bool:
        return bool(self._last or self._intervals)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GtidSet):
            return NotImplemented
        return self._last == other._last and self._intervals == other._intervals

    def __hash__(self) -> int:
        return hash(str(self))
