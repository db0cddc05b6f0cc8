"""A minimal HTTP/1.1 keep-alive client on `asyncio.Protocol`, for load generation only.

Why our own client rather than httpx or aiohttp: on the 2-core machine the load generator shares
the CPU with the API workers and both database servers, so every microsecond the client spends per
request is taken from the system under test. Measured with `benchmarks/client_cpu.py` (client
process CPU time, user + system, divided by responses; POST /transactions with generated bodies
against the real API; uvloop; 2-core Debian 12 machine shared with other work, so ±20 %):

==============================  =================  =================  ===========================
client                          CPU/request, 10 c  CPU/request, 50 c  API TPS it left, 50 c
==============================  =================  =================  ===========================
httpx 0.28 (AsyncClient)        ~1,000 µs          ~5,000 µs          ~120 (the client saturates)
aiohttp 3.14 (ClientSession)    ~240 µs            ~175 µs            ~1,100
this module (asyncio protocol)  ~75 µs             ~70 µs             ~1,750
wrk 4.1 (C + LuaJIT, reference) -                  ~47 µs             ~1,550 (another moment)
==============================  =================  =================  ===========================

(c = concurrent keep-alive connections; the body generator is included.) The raw client costs
about a third of aiohttp and 1.5x wrk, and needs no new dependency, so it is the one used;
`benchmarks/README.md` has the exact figures of the last run.

What it supports, and all it has to: one request in flight per connection (no pipelining), bodies
framed by `Content-Length` or `Transfer-Encoding: chunked`, `Connection: close` from the server
(the connection is then reported as closed and the caller reconnects). Requests are pre-encoded
bytes built by the caller, so no header is formatted twice.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

from ledgerguard.errors import LedgerGuardError

_HEADER_END = b"\r\n\r\n"
_MAX_HEADER_BYTES = 64 * 1024


class HttpClientError(LedgerGuardError):
    """The server could not be reached, broke the connection, or answered non-HTTP."""


class RequestTimeout(HttpClientError):
    """No complete response within the request's timeout (the connection is then unusable)."""


@dataclass(frozen=True)
class Endpoint:
    """Where requests go: host, port and the `Host` header value, parsed once from a URL."""

    host: str
    port: int
    base_path: str

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise HttpClientError(
                f"not a plain http:// URL: {url!r} (the load client speaks HTTP/1.1 without TLS; "
                "benchmark the API directly, not through a TLS proxy)"
            )
        return cls(parts.hostname, parts.port or 80, parts.path.rstrip("/"))

    @property
    def host_header(self) -> str:
        return f"{self.host}:{self.port}"


def build_request(
    method: str, endpoint: Endpoint, path: str, headers: dict[str, str], body: bytes = b""
) -> bytes:
    """The complete request bytes; headers are written as given (no normalisation)."""
    lines = [f"{method} {endpoint.base_path}{path} HTTP/1.1", f"Host: {endpoint.host_header}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class HttpConnection(asyncio.Protocol):
    """One keep-alive connection; `request()` sends pre-built bytes and returns (status, body)."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed_exc: Exception | None = None
        #: Set when the server said `Connection: close` or the connection failed.
        self.closed = False

    # --- asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        try:
            parsed = parse_response(self._buffer)
        except HttpClientError as exc:
            self._fail(exc)
            return
        if parsed is None:
            return
        status, body, consumed, close = parsed
        del self._buffer[:consumed]
        self._finish()
        if close:
            self.closed = True
            if self._transport is not None:
                self._transport.close()
        waiter.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(HttpClientError(f"connection closed by the server ({exc or 'EOF'})"))

    # --- client API -----------------------------------------------------------------------------
    async def request(self, raw: bytes, *, timeout: float) -> tuple[int, bytes]:  # noqa: ASYNC109
        """Send one complete request and wait for its response (one request at a time).

        The timeout is a timer handle cancelled on the response, not `asyncio.timeout()`: it
        costs a fraction of a microsecond per request instead of a context and a cancellation.
        """
        if self.closed or self._transport is None:
            raise HttpClientError("connection is closed")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[tuple[int, bytes]] = loop.create_future()
        self._waiter = waiter
        self._timer = loop.call_later(timeout, self._on_timeout)
        self._transport.write(raw)
        return await waiter

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    # --- internals ------------------------------------------------------------------------------
    def _finish(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._waiter = None

    def _fail(self, exc: Exception) -> None:
        waiter = self._waiter
        self._finish()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _on_timeout(self) -> None:
        self._timer = None
        self._fail(RequestTimeout("no response within the timeout"))
        # a late response would be read as the answer to the next request: drop the connection
        self.close()


async def connect(
    endpoint: Endpoint, *, connect_timeout: float = 10.0, source: str | None = None
) -> HttpConnection:
    """A new keep-alive connection to `endpoint` (TCP_NODELAY is set by asyncio itself), from
    the local address `source` when given (e.g. a second loopback address)."""
    loop = asyncio.get_running_loop()
    local = (source, 0) if source else None
    try:
        async with asyncio.timeout(connect_timeout):
            _, protocol = await loop.create_connection(
                HttpConnection, endpoint.host, endpoint.port, local_addr=local
            )
    except (OSError, TimeoutError) as exc:
        raise HttpClientError(
            f"cannot connect to {endpoint.host_header}: {exc}; is the API running "
            "(`ledgerguard api start`)?"
        ) from exc
    return protocol


def parse_response(buffer: bytearray) -> tuple[int, bytes, int, bool] | None:
    """(status, body, bytes consumed, server closes) once a whole response is buffered."""
    end = buffer.find(_HEADER_END)
    if end < 0:
        if len(buffer) > _MAX_HEADER_BYTES:
            raise HttpClientError("response headers too large")
        return None
    head = bytes(buffer[:end]).lower()
    if not head.startswith(b"http/1.") or len(head) < 12:
        raise HttpClientError(f"not an HTTP/1.x response: {bytes(buffer[:40])!r}")
    try:
        status = int(head[9:12])
    except ValueError:
        raise HttpClientError(f"bad status line: {bytes(buffer[:40])!r}") from None
    close = b"\r\nconnection: close" in head
    body_start = end + 4
    length = _header_value(head, b"content-length")
    if length is not None:
        body_end = body_start + int(length)
        if len(buffer) < body_end:
            return None
        return status, bytes(buffer[body_start:body_end]), body_end, close
    if b"chunked" in (_header_value(head, b"transfer-encoding") or b""):
        decoded = _dechunk(buffer, body_start)
        if decoded is None:
            return None
        body, consumed = decoded
        return status, body, consumed, close
    if status in (204, 304) or 100 <= status < 200:
        return status, b"", body_start, close
    raise HttpClientError("response without Content-Length or chunked framing")


def _header_value(head: bytes, name: bytes) -> bytes | None:
    start = head.find(b"\r\n" + name + b":")
    if start < 0:
        return None
    start += len(name) + 3
    stop = head.find(b"\r\n", start)
    return head[start : stop if stop >= 0 else len(head)].strip()


def _dechunk(buffer: bytearray, offset: int) -> tuple[bytes, int] | None:
    """The decoded body and the end offset, or None when the last chunk has not arrived."""
    body = bytearray()
    while True:
        line_end = buffer.find(b"\r\n", offset)
        if line_end < 0:
            return None
        size = int(bytes(buffer[offset:line_end]).split(b";")[0], 16)
        offset = line_end + 2
        if size == 0:
            trailer_end = buffer.find(b"\r\n", offset)
            if trailer_end < 0:
                return None
            # trailers (rare) end with an empty line; skip them
            while trailer_end != offset:
                offset = trailer_end + 2
                trailer_end = buffer.find(b"\r\n", offset)
                if trailer_end < 0:
                    return None
            return bytes(body), offset + 2
        if len(buffer) < offset + size + 2:
            return None
        body += buffer[offset : offset + size]
        offset += size + 2
