"""The load tools' arithmetic without servers: percentiles, histograms, bodies, parsers, lag."""

from __future__ import annotations

import json
import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledgerguard.db.consistency import gtid_sequence
from ledgerguard.load.bench.ceiling import parse_sysbench
from ledgerguard.load.bench.servers import LagHistory
from ledgerguard.load.client import Endpoint, build_request, parse_response
from ledgerguard.load.generator import (
    CURRENCIES,
    GeneratorConfig,
    TransactionGenerator,
    format_minor,
)
from ledgerguard.load.stats import (
    LatencyHistogram,
    bucket_of,
    bucket_upper,
    exact_percentile,
    nearest_rank,
)
from ledgerguard.money import check_amount

# --- percentiles -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "n", "rank"),
    [
        (50, 1, 1),
        (50, 2, 1),
        (50, 3, 2),
        (99, 100, 99),
        (99, 101, 100),
        (99.9, 1000, 999),
        (100, 7, 7),
        (0, 7, 0),
    ],
)
def test_nearest_rank(p: float, n: int, rank: int) -> None:
    assert nearest_rank(p, n) == rank


def test_exact_percentile_nearest_rank() -> None:
    samples = [float(v) for v in range(1, 101)]  # 1..100
    assert exact_percentile(samples, 50) == 50
    assert exact_percentile(samples, 99) == 99
    assert exact_percentile(samples, 100) == 100
    assert exact_percentile([3.0], 99.9) == 3.0


def test_buckets_are_contiguous_and_tight() -> None:
    previous = -1
    for value in [*range(0, 5000), *range(5000, 10**7, 997)]:
        index = bucket_of(value)
        assert index >= previous  # monotonic
        upper = bucket_upper(index)
        assert value <= upper
        assert upper - value <= max(0, value) / 128  # ≤ 0.8 % above the value
        previous = index


def test_small_values_are_exact() -> None:
    hist = LatencyHistogram()
    for us in (10, 20, 30, 40):
        hist.record(us / 1e6)
    assert hist.percentiles((50.0, 100.0)) == {50.0: 20.0, 100.0: 40.0}
    assert hist.min_us == 10 and hist.max_us == 40 and hist.mean_us == 25


def test_empty_histogram_reports_nothing() -> None:
    hist = LatencyHistogram()
    assert hist.percentiles() == {}
    assert hist.summary_ms()["p99"] is None and hist.summary_ms()["max"] is None


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(min_value=0.0, max_value=30.0, allow_nan=False), min_size=1, max_size=400),
    st.sampled_from([50.0, 90.0, 95.0, 99.0, 99.9]),
)
def test_histogram_matches_exact_percentile(samples: list[float], p: float) -> None:
    hist = LatencyHistogram()
    for s in samples:
        hist.record(s)
    exact_us = int(exact_percentile(samples, p) * 1_000_000)
    got = hist.percentiles((p,))[p]
    assert exact_us <= got <= exact_us + exact_us / 128 + 1


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(min_value=0.0, max_value=5.0, allow_nan=False), max_size=100),
    st.lists(st.floats(min_value=0.0, max_value=5.0, allow_nan=False), max_size=100),
)
def test_merge_equals_recording_everything(a: list[float], b: list[float]) -> None:
    left, right, both = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    for s in a:
        left.record(s)
        both.record(s)
    for s in b:
        right.record(s)
        both.record(s)
    left.merge(right)
    assert left == both


def test_huge_latency_is_clamped_not_lost() -> None:
    hist = LatencyHistogram()
    hist.record(10**9)  # far beyond any timeout
    assert hist.count == 1 and hist.percentiles((50.0,))


# --- generated bodies ------------------------------------------------------------------------


def test_bodies_are_valid_transactions() -> None:
    generator = TransactionGenerator(GeneratorConfig(seed=7, first_user_id=500, customers=50))
    currencies, large = set(), 0
    for _ in range(3000):
        body = json.loads(generator.body())
        assert set(body) <= {"user_id", "amount", "currency", "terminal_id", "merchant_id"}
        assert 500 <= body["user_id"] < 550
        amount = Decimal(body["amount"])
        check_amount(amount, body["currency"], maximum=Decimal(10**12))  # right decimals
        currencies.add(body["currency"])
        _, _, usd_per_unit = CURRENCIES[body["currency"]]
        large += float(amount) * usd_per_unit > 10_000
    assert currencies == set(CURRENCIES)
    assert 5 <= large <= 80  # ~1 % of 3000


def test_seeded_stream_is_reproducible() -> None:
    first = TransactionGenerator(GeneratorConfig(seed=1))
    second = TransactionGenerator(GeneratorConfig(seed=1))
    assert [first.body() for _ in range(20)] == [second.body() for _ in range(20)]


@pytest.mark.parametrize(
    ("amount", "digits", "text"),
    [
        (12.346, 2, "12.35"),
        (0.001, 2, "0.01"),
        (1234.4, 0, "1234"),
        (0.2, 0, "1"),
        (5.0, 2, "5.00"),
    ],
)
def test_format_minor(amount: float, digits: int, text: str) -> None:
    assert format_minor(amount, digits) == text


# --- HTTP framing ----------------------------------------------------------------------------


def test_build_request_has_length_and_host() -> None:
    raw = build_request(
        "POST", Endpoint.parse("http://127.0.0.1:8123/api"), "/transactions", {"X-A": "1"}, b"{}"
    )
    assert raw.startswith(b"POST /api/transactions HTTP/1.1\r\nHost: 127.0.0.1:8123\r\n")
    assert b"Content-Length: 2\r\n\r\n{}" in raw


def testparse_response_content_length_and_partial() -> None:
    whole = b"HTTP/1.1 201 Created\r\ncontent-length: 5\r\n\r\nhello"
    assert parse_response(bytearray(whole[:-2])) is None
    assert parse_response(bytearray(whole + b"HTTP/1.1")) == (201, b"hello", len(whole), False)


def testparse_response_chunked_and_close() -> None:
    raw = (
        b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    assert parse_response(bytearray(raw[:-3])) is None
    assert parse_response(bytearray(raw)) == (503, b"abcde", len(raw), True)


# --- sysbench output and replica lag --------------------------------------------------------

SYSBENCH_OUTPUT = """
[ 1s ] thds: 50 tps: 3985.06 qps: 3985.06 (r/w/o: 0.00/3985.06/0.00) lat (ms,99%): 262.64 err/s: 0.00 reconn/s: 0.00
[ 2s ] Checkpoint report:
SQL statistics:
    transactions:                        11278  (5637.27 per sec.)
    ignored errors:                      0      (0.00 per sec.)
Latency (ms):
         min:                                    0.79
         avg:                                    8.84
         max:                                  269.21
[ 3s ] thds: 50 tps: 7378.18 qps: 7378.18 (r/w/o: 0.00/7378.18/0.00) lat (ms,99%): 37.56 err/s: 0.00 reconn/s: 0.00
Latency histogram (values are in milliseconds)
       value  ------------- distribution ------------- count
       1.000 |*****                                    50
       2.000 |**********************************       49
      40.000 |*                                        1

SQL statistics:
    transactions:                        100  (50.00 per sec.)
    ignored errors:                      2      (0.00 per sec.)
Latency (ms):
         min:                                    0.42
         avg:                                    7.85
         max:                                  40.00
"""


def test_parse_sysbench_uses_last_block_and_histogram() -> None:
    result = parse_sysbench(SYSBENCH_OUTPUT, threads=50, seconds=2, warmup=2)
    assert result.tps == 50.0 and result.transactions == 100 and result.errors == 2
    assert result.latency_ms == {"p50": 1.0, "p95": 2.0, "p99": 2.0, "mean": 7.85, "max": 40.0}
    assert result.timeline == [{"t": 1.0, "tps": 7378.18, "p99_ms": 37.56}]


def test_position_covers_a_token_of_either_flavour() -> None:
    from ledgerguard.db.consistency import position_covers

    assert position_covers("0-1-42,1-2-8", "0-1-40") and not position_covers("0-1-42", "1-2-1")
    uuid = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
    assert position_covers(f"{uuid}:1-50", f"{uuid}:42")
    assert not position_covers(f"{uuid}:1-40", f"{uuid}:42")
    assert not position_covers(None, "0-1-1") and not position_covers("0-1-5", "not a gtid")


def test_gtid_sequence() -> None:
    assert gtid_sequence("0-1-42") == 42
    assert gtid_sequence("0-1-42,1-2-8") == 50
    assert gtid_sequence("") == 0
    assert gtid_sequence(None) is None
    assert gtid_sequence("3E11FA47-71CA-11E1-9E33:1-5") is None


def test_lag_is_age_of_oldest_missing_transaction() -> None:
    history = LagHistory()
    history.add_primary(0.0, 100)
    history.add_primary(1.0, 200)
    history.add_primary(2.0, 300)
    assert history.lag(2.0, 300) == 0  # caught up
    assert math.isclose(history.lag(2.0, 249), 0.5)  # tx 250 committed at ~1.5 s
    assert math.isclose(history.lag(2.5, 199), 1.5)  # tx 200 committed at 1.0 s
    assert history.lag(2.0, 50) == 2.0  # older than the history: a lower bound


def test_the_flood_of_bench_unauthenticated_comes_from_its_own_loopback_address() -> None:
    """Keyed load (127.0.0.1) and flood must not share the per-address budget; a tiny HTTP
    server sees where the flood's connections come from."""
    import asyncio

    from ledgerguard.load.bench.unauthenticated import FLOOD_SOURCE, _flood, flood_source

    assert flood_source("http://127.0.0.1:8000") == FLOOD_SOURCE
    assert flood_source("http://localhost:8000") == FLOOD_SOURCE
    assert flood_source("https://api.example.com") is None
    peers: set[str] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.add(writer.get_extra_info("peername")[0])
        while (await reader.readuntil(b"\r\n\r\n")) and not reader.at_eof():
            writer.write(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n")
            await writer.drain()

    async def run() -> dict:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await _flood(f"http://127.0.0.1:{port}", rate=40, duration=0.5)

    report = asyncio.run(run())
    assert report["statuses"].get("401", 0) >= 10
    assert peers == {FLOOD_SOURCE}


def test_verdict_latency_timeline_places_a_stall_in_its_second() -> None:
    from ledgerguard.load.bench.realtime import latency_timeline

    timeline = latency_timeline([0.1, 0.9, 1.2, 2.5, 2.6], [10.0, 30.0, 5000.0, 20.0, 40.0])
    assert [row["t"] for row in timeline] == [0, 1, 2]
    assert timeline[0] == {"t": 0, "transactions": 2, "p50_ms": 20.0, "max_ms": 30.0}
    assert timeline[1]["max_ms"] == 5000.0 and timeline[2]["transactions"] == 2


def test_the_state_memory_is_measured_in_a_process_of_its_own() -> None:
    """`bench realtime`'s state figure: the users' windows built in a spawned child."""
    from ledgerguard.load.bench.state_memory import measure_state_memory

    report = measure_state_memory(2_000, 5)
    assert (report["users"], report["transactions"]) == (2_000, 10_000)
    assert report["peak_rss_mib"] >= report["rss_before_mib"] > 0
