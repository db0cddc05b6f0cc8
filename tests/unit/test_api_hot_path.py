"""Pieces of the API's hot path made cheaper in issue #13 (session 8), checked against what they
replace: the coalescing transport of the worker, and JSON-mode validation of the fast path."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

from ledgerguard.api.schemas import TransactionCreate
from ledgerguard.api.worker import ApiWorker, CoalescingTransport, OneWriteHttpToolsProtocol


class _Transport:
    """What the wrapped transport saw: each `write` call, and whether it was closed/aborted."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5)}.get(name, default)


def test_writes_of_one_loop_turn_leave_in_one_write_in_order():
    async def scenario() -> None:
        real = _Transport()
        transport = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 201 Created\r\n\r\n")
        transport.write(bytearray(b"{}"))
        assert real.writes == [] and transport.get_write_buffer_size() == 26
        await asyncio.sleep(0)  # the next turn
        assert real.writes == [b"HTTP/1.1 201 Created\r\n\r\n{}"]
        transport.write(b"one")
        await asyncio.sleep(0)
        transport.writelines([b"two", b"three"])
        await asyncio.sleep(0)
        assert real.writes[1:] == [b"one", b"twothree"]
        assert transport.get_extra_info("peername") == ("127.0.0.1", 5)  # the rest: delegated

    asyncio.run(scenario())


def test_close_sends_what_is_pending_first_abort_and_a_lost_connection_drop_it():
    async def scenario() -> None:
        real = _Transport()
        transport = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"head")
        transport.write(b"body")
        transport.close()
        assert real.writes == [b"headbody"] and real.closed
        await asyncio.sleep(0)  # the scheduled flush finds nothing left
        assert real.writes == [b"headbody"]
        transport.write(b"late")  # closing: straight through, as without the wrapper
        assert real.writes[-1] == b"late"

        other = _Transport()
        transport = CoalescingTransport(other, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"never")
        transport.abort()
        await asyncio.sleep(0)
        assert other.writes == [] and other.aborted

        lost = _Transport()
        transport = CoalescingTransport(lost, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"undeliverable")
        lost.closed = True  # the connection was lost before the next turn
        await asyncio.sleep(0)
        assert lost.writes == []

    asyncio.run(scenario())


def test_the_api_worker_runs_uvicorn_with_the_one_write_protocol():
    assert ApiWorker.CONFIG_KWARGS["http"] is OneWriteHttpToolsProtocol
    assert ApiWorker.CONFIG_KWARGS["loop"] == "auto"  # uvloop when installed, as before


#: Bodies where JSON mode and FastAPI's `json.loads` + Python mode could part ways.
TRICKY = [
    b'{"user_id":1,"amount":15000.00,"currency":"USD"}',
    b'{"user_id":1,"amount":0.1,"currency":"USD"}',
    b'{"user_id":1,"amount":1e3,"currency":"USD"}',
    b'{"user_id":1,"amount":1.0e+3,"currency":"USD"}',
    b'{"user_id":1,"amount":0.30000000000000004,"currency":"BHD"}',
    b'{"user_id":1,"amount":100000000000000000000000,"currency":"USD"}',
    b'{"user_id":510509.0,"amount":"12","currency":"JPY"}',
    b'{"user_id":1e2,"amount":"12","currency":"JPY"}',
    b'{"user_id":true,"amount":"12.50","currency":"USD"}',
    b'{"user_id":9007199254740992,"amount":"12.50","currency":"USD"}',
    b'{"user_id":1,"amount":NaN,"currency":"USD"}',
    b'{"user_id":1,"amount":"12.50","currency":"USD","user_id":2}',
    b'{"user_id":1,"amount":"12.50","currency":"USD","occurred_at":"2025-01-31T10:00:00+02:00"}',
    b'{"user_id":1,"amount":"12.50","currency":"USD","occurred_at":"2025-01-31T10:00:00"}',
    b'{"user_id":1,"amount":"12.50","currency":"USD","occurred_at":"2025-01-31"}',
    b'{"user_id":1,"amount":"12.50","currency":"USD","occurred_at":1738310400}',
    b'{"user_id":1,"amount":"12.50","currency":"USD","occurred_at":"1738310400"}',
    b'{"user_id":1,"amount":"12.50","currency":"USD","external_id":"a\\ud800b"}',
    b'{"user_id":1,"amount":"12.50","currency":"USD","external_id":"\\u00e9t\\u00e9"}',
    '{"user_id":1,"amount":"12.50","currency":"USD","external_id":"été"}'.encode(),
    b'{"user_id":1,"amount":"12.50","currency":"USD","external_id":"x\\u0000"}',
    b' {"user_id":1,"amount":"12.50","currency":"USD","terminal_id":null}\n',
    b'\xef\xbb\xbf{"user_id":1,"amount":"12.50","currency":"USD"}',
    '{"user_id":1,"amount":"12.50","currency":"USD"}'.encode("utf-16"),
    b"[" * 5000 + b"]" * 5000,
]


def _python_mode(body: bytes) -> TransactionCreate | None:
    """What FastAPI does with a JSON body: `json.loads`, then the model in Python mode."""
    try:
        return TransactionCreate.model_validate(json.loads(body))
    except Exception:  # noqa: BLE001 - any refusal
        return None


def _json_mode(body: bytes) -> TransactionCreate | None:
    try:
        return TransactionCreate.model_validate_json(body)
    except Exception:  # noqa: BLE001
        return None


def _same(first: TransactionCreate, second: TransactionCreate) -> bool:
    return (
        repr(first) == repr(second)
        and first.model_dump_json() == second.model_dump_json()
        and [type(v) for v in vars(first).values()] == [type(v) for v in vars(second).values()]
    )


def _random_bodies(count: int) -> list[bytes]:
    """Bodies mixing valid and invalid values of every JSON type in every field."""
    rand = random.Random(13)
    values = [
        *("1", "0", "-1", "1.0", "1.5", "1e2", "-0.0", "12.3456", "12.34567", "1000000000000"),
        *("9007199254740991", "9007199254740991.0", "1e309", "100.10", "17"),
        *('"1"', '"12.50"', '"012.50"', '"12.5000"', '"12.50000"', '" 12"', '"1e2"', '""'),
        *('"USD"', '"usd"', '"JPY"', '"BHD"', '"XXX"', '"2025-01-31T10:00:00+02:00"'),
        *('"2025-01-31T10:00:00"', '"2025-01-31"', '"2025-01-31T10:00:00.5Z"', '"a\\u0000"'),
        *('"\\ud83d\\ude00"', '"\\ud83d"', "null", "true", "[]", "{}"),
    ]
    names = ("external_id", "terminal_id", "merchant_id", "occurred_at", "extra")
    bodies = []
    for _ in range(count):
        fields = {
            "user_id": rand.choice(["77", rand.choice(values)]),
            "amount": rand.choice(['"12.50"', rand.choice(values)]),
            "currency": rand.choice(['"USD"', '"JPY"', '"BHD"', rand.choice(values)]),
        }
        fields |= {name: rand.choice(values) for name in names if rand.random() < 0.3}
        bodies.append(("{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}").encode())
    return bodies


def test_json_mode_accepts_only_what_fastapi_accepts_with_the_same_values():
    """The fast path validates in JSON mode: whatever it takes, FastAPI's way must take with
    identical values (else a 201 would differ); what only FastAPI takes is handed over."""
    accepted = handed_over = 0
    for body in TRICKY + _random_bodies(20_000):
        fast = _json_mode(body)
        if fast is None:
            handed_over += _python_mode(body) is not None
            continue
        accepted += 1
        route = _python_mode(body)
        assert route is not None and _same(fast, route), body
    assert accepted > 1_000  # the random bodies reach the accepting side often enough
    assert handed_over == 2  # the UTF-8 byte-order mark and UTF-16: the route answers them
