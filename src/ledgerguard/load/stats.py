"""Latency percentiles with bounded memory and O(1) recording: a log-linear histogram.

Why not keep every sample and sort: a 60 s run at 5,000 requests/s is 300,000 samples, and the
live display wants percentiles of every half-second *and* of the whole run. A histogram in the
manner of HdrHistogram records a sample with a few integer operations, merges by adding counts,
and answers any percentile from a few thousand buckets.

Buckets: values are integer microseconds. Values below 2**SIGNIFICANT_BITS (256 µs) have one
bucket each (exact); above, each power of two is split into 2**(SIGNIFICANT_BITS-1) = 128 equal
buckets, so a bucket is never wider than 1/128 of its lower bound. A percentile is reported as
the *upper* edge of its bucket (never optimistic), at most 0.8 % above the exact sample value.
Percentiles use the nearest-rank definition: p-th percentile = the smallest recorded value with
at least p % of the samples at or below it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

SIGNIFICANT_BITS = 8
_EXACT = 1 << SIGNIFICANT_BITS  # 256: values below are their own bucket
_HALF = _EXACT >> 1  # 128 sub-buckets per power of two above
#: Buckets up to 2**40 µs (12 days): far beyond any timeout, so no sample is ever clamped.
_BUCKETS = (40 - SIGNIFICANT_BITS + 2) * _HALF
_LARGEST = (1 << 40) - 1

DEFAULT_PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)


def bucket_of(value_us: int) -> int:
    """The bucket index of a non-negative integer number of microseconds."""
    if value_us < _EXACT:
        return max(0, value_us)
    shift = value_us.bit_length() - SIGNIFICANT_BITS
    return shift * _HALF + (value_us >> shift)


def bucket_upper(index: int) -> int:
    """The largest value (µs) that falls in bucket `index`."""
    if index < _EXACT:
        return index
    shift = index // _HALF - 1
    mantissa = index - shift * _HALF
    return ((mantissa + 1) << shift) - 1


@dataclass
class LatencyHistogram:
    """Counts of latencies (µs) per log-linear bucket, plus exact count, sum, min and max."""

    counts: list[int] = field(default_factory=lambda: [0] * _BUCKETS)
    count: int = 0
    total_us: int = 0
    min_us: int | None = None
    max_us: int = 0

    def record(self, seconds: float) -> None:
        """Add one latency given in seconds (as `time.perf_counter()` differences are)."""
        value = min(max(0, int(seconds * 1_000_000)), _LARGEST)
        self.counts[bucket_of(value)] += 1
        self.count += 1
        self.total_us += value
        if value > self.max_us:
            self.max_us = value
        if self.min_us is None or value < self.min_us:
            self.min_us = value

    def merge(self, other: LatencyHistogram) -> None:
        """Add `other`'s samples to this histogram (e.g. one interval into the whole run)."""
        if other.count == 0:
            return
        counts = self.counts
        for index, n in enumerate(other.counts):
            if n:
                counts[index] += n
        self.count += other.count
        self.total_us += other.total_us
        self.max_us = max(self.max_us, other.max_us)
        if other.min_us is not None:
            self.min_us = other.min_us if self.min_us is None else min(self.min_us, other.min_us)

    def percentiles(self, wanted: Iterable[float] = DEFAULT_PERCENTILES) -> dict[float, float]:
        """Nearest-rank percentiles in microseconds (bucket upper edge, capped at the max).

        One pass over the buckets answers every requested percentile. An empty histogram has no
        percentiles (an empty dict), so callers never report a zero latency that was not measured.
        """
        if self.count == 0:
            return {}
        targets = sorted((p, max(1, nearest_rank(p, self.count))) for p in wanted)
        result: dict[float, float] = {}
        seen = 0
        position = 0
        for index, n in enumerate(self.counts):
            if not n:
                continue
            seen += n
            while position < len(targets) and seen >= targets[position][1]:
                result[targets[position][0]] = float(min(bucket_upper(index), self.max_us))
                position += 1
            if position == len(targets):
                break
        return result

    @property
    def mean_us(self) -> float | None:
        return self.total_us / self.count if self.count else None

    def summary_ms(self, wanted: Iterable[float] = DEFAULT_PERCENTILES) -> dict[str, float | None]:
        """`{"p50": ms, ..., "mean": ms, "min": ms, "max": ms}` for reports (None when empty)."""
        wanted = tuple(wanted)
        values = self.percentiles(wanted)
        out: dict[str, float | None] = {percentile_name(p): _ms(values.get(p)) for p in wanted}
        out["mean"] = _ms(self.mean_us)
        out["min"] = _ms(self.min_us)
        out["max"] = _ms(self.max_us if self.count else None)
        return out


def percentile_name(p: float) -> str:
    """50 → "p50", 99.9 → "p99.9"."""
    return f"p{p:g}"


def exact_percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile of raw samples (the definition the histogram approximates)."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    return ordered[max(1, nearest_rank(p, len(ordered))) - 1]


def nearest_rank(p: float, n: int) -> int:
    """Nearest rank: ceil(p/100 · n), without float surprises for whole numbers (0 → 0)."""
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be within 0..100, not {p}")
    scaled = p * n
    rank = int(scaled // 100)
    return rank + 1 if scaled - rank * 100 > 1e-9 else rank


def _ms(value_us: float | None) -> float | None:
    return None if value_us is None else round(value_us / 1000, 3)
