"""The Gunicorn worker class of the API: Uvicorn (uvloop, httptools), one write per response.

Uvicorn's httptools protocol writes a response's status line and headers when the app sends
`http.response.start`, and the body with `http.response.body`: two `transport.write` calls, and
uvloop sends each at once, so every response cost two `write` system calls, two TCP segments over
loopback and often two wake-ups of the client. Profiled under `ledgerguard load --users 50`, those
writes were about a quarter of an API worker's CPU (issue #13, session 8).

`OneWriteHttpToolsProtocol` is Uvicorn's own protocol with its transport wrapped in
`CoalescingTransport`: what the app writes during one event-loop turn leaves in one `write`, at
the start of the next turn. The bytes on the wire and their order are exactly Uvicorn's; only
their grouping into system calls changes. Closing the connection sends what is pending first.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn_worker import UvicornWorker


class CoalescingTransport:
    """A transport whose writes within one event-loop turn reach the socket as one write.

    Everything but writing and closing is the wrapped transport's own (reading, flow control,
    `get_extra_info`). A write while the wrapped transport is closing goes straight to it, as it
    would without this wrapper.
    """

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._pending is not None:
            self._pending.append(bytes(data))
        elif self._transport.is_closing():
            self._transport.write(data)
        else:
            self._pending = [bytes(data)]
            self._loop.call_soon(self.flush)

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def flush(self) -> None:
        """Hand what is pending to the wrapped transport (one write); nothing when the
        connection was lost meanwhile (`close` flushes before closing)."""
        pending, self._pending = self._pending, None
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def get_write_buffer_size(self) -> int:
        pending = sum(len(chunk) for chunk in self._pending) if self._pending else 0
        return self._transport.get_write_buffer_size() + pending

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """Uvicorn's httptools protocol writing through `CoalescingTransport`."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        wrapped: Any = CoalescingTransport(transport, self.loop)  # type: ignore[arg-type]
        super().connection_made(wrapped)


class ApiWorker(UvicornWorker):
    """`uvicorn_worker.UvicornWorker` with `OneWriteHttpToolsProtocol`; the loop as before
    (uvloop when installed)."""

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {"loop": "auto", "http": OneWriteHttpToolsProtocol}
