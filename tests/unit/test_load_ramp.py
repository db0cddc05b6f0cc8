"""The closed-loop users open their connections over the ramp-up, not in the same millisecond.

A plain asyncio HTTP server on a free port records when each connection arrives; the load runs
against it for real (the runner's own client, no mock of it)."""

from __future__ import annotations

import asyncio
import time

from ledgerguard.load.runner import LoadConfig, run_load

_ANSWER = b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


async def _arrivals(users: int, warmup: float, ramp_up: float | None) -> list[float]:
    arrivals: list[float] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        arrivals.append(time.perf_counter())
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                writer.write(_ANSWER)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        config = LoadConfig(
            url=f"http://127.0.0.1:{port}",
            keys=("k",),
            users=users,
            duration=0.3,
            warmup=warmup,
            ramp_up=ramp_up,
        )
        await run_load(config)
    # the first arrival is the runner's probe of the server
    return arrivals[1:]


def test_users_connect_one_after_another_over_half_the_warmup() -> None:
    arrivals = asyncio.run(_arrivals(users=10, warmup=1.0, ramp_up=None))
    assert len(arrivals) == 10
    spread = arrivals[-1] - arrivals[0]
    # user i waits i/10 of the 0.5 s ramp: the last one 0.45 s after the first
    assert 0.35 <= spread <= 0.9, spread


def test_no_ramp_up_connects_every_user_at_once() -> None:
    arrivals = asyncio.run(_arrivals(users=10, warmup=1.0, ramp_up=0))
    assert len(arrivals) == 10
    assert arrivals[-1] - arrivals[0] < 0.2
