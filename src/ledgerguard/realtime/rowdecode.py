"""Row values of a binlog rows event, decoded in one pass over its bytes.

`mysql-replication` decodes every column of every row through several layers of Python calls
(a packet wrapper read per field, a type dispatch, bitmap helpers): about 40 µs per row of
`transactions` on this machine, the largest part of the scorer's CPU per transaction. Here the
event's remaining bytes are read once and each column is decoded by a function chosen once per
table layout, which gives the same values (`int`, `Decimal`, naive `datetime`, `str`, None) at a
fraction of the cost. Only the column types LedgerGuard's tables use are handled; for anything
else (another type, a partial row image) `decode_rows` returns None *before reading*, and the
caller lets the library decode the event as before.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from pymysqlreplication.constants import FIELD_TYPE
from pymysqlreplication.row_event import RowsEvent

Decoder = Callable[[bytes, int], tuple[Any, int]]

#: Bytes of a group of 0-9 decimal digits in MySQL's packed DECIMAL.
_DIGIT_BYTES = (0, 1, 1, 2, 2, 3, 3, 4, 4, 4)
_INTEGERS = {
    FIELD_TYPE.TINY: 1,
    FIELD_TYPE.SHORT: 2,
    FIELD_TYPE.LONG: 4,
    FIELD_TYPE.LONGLONG: 8,
}


def _integer(size: int, signed: bool) -> Decoder:
    code = {1: "b", 2: "h", 4: "i", 8: "q"}[size]
    unpack = struct.Struct("<" + (code if signed else code.upper())).unpack_from

    def decode(data: bytes, pos: int) -> tuple[Any, int]:
        return unpack(data, pos)[0], pos + size

    return decode


def _string(length_bytes: int, encoding: str) -> Decoder:
    if length_bytes == 1:  # CHAR, VARCHAR up to 255 bytes: the length is one byte

        def decode(data: bytes, pos: int) -> tuple[Any, int]:
            end = pos + 1 + data[pos]
            return data[pos + 1 : end].decode(encoding), end

        return decode

    def decode_long(data: bytes, pos: int) -> tuple[Any, int]:
        start = pos + length_bytes
        end = start + int.from_bytes(data[pos:start], "little")
        return data[start:end].decode(encoding), end

    return decode_long


def _decimal(precision: int, decimals: int) -> Decoder:
    """MySQL's packed DECIMAL: groups of 9 digits in 4 bytes, big-endian, sign in the top bit
    (negative values have every bit inverted).

    The value is read as one big-endian integer, its groups taken apart by shifts into the
    integer of all its digits, and that integer scaled by `decimals` places: the `Decimal` the
    library builds from the digits' text (same digits, same exponent), with far fewer steps."""
    integral = precision - decimals
    groups: list[tuple[int, int]] = []  # (bytes, digits) in order, most significant first
    if integral % 9:
        groups.append((_DIGIT_BYTES[integral % 9], integral % 9))
    groups += [(4, 9)] * (integral // 9)
    groups += [(4, 9)] * (decimals // 9)
    if decimals % 9:
        groups.append((_DIGIT_BYTES[decimals % 9], decimals % 9))
    size = sum(width for width, _ in groups)
    sign_bit = 1 << (8 * size - 1)
    every_bit = (1 << (8 * size)) - 1
    # (shift, mask, 10^digits) per group, read most significant first
    steps = []
    shift = 8 * size
    for width, digits in groups:
        shift -= 8 * width
        steps.append((shift, (1 << (8 * width)) - 1, 10**digits))
    exponent = f"E-{decimals}"

    def decode(data: bytes, pos: int) -> tuple[Any, int]:
        end = pos + size
        raw = int.from_bytes(data[pos:end], "big")
        negative = not raw & sign_bit
        raw ^= every_bit if negative else sign_bit
        if negative:
            raw ^= sign_bit
        digits = 0
        for shift, mask, scale in steps:
            digits = digits * scale + ((raw >> shift) & mask)
        return Decimal(f"{'-' if negative else ''}{digits}{exponent}"), end

    return decode


def _datetime2(fsp: int) -> Decoder:
    """DATETIME(fsp): 40 bits (sign, year*13+month, day, hour, minute, second) + fraction."""
    fraction_bytes = (fsp + 1) // 2
    scale = 10 ** (6 - fsp)

    fraction_bits = 8 * fraction_bytes
    fraction_mask = (1 << fraction_bits) - 1

    def decode(data: bytes, pos: int) -> tuple[Any, int]:
        end = pos + 5 + fraction_bytes
        whole = int.from_bytes(data[pos:end], "big")  # the 5 bytes, then the fraction's
        packed = whole >> fraction_bits
        micro = whole & fraction_mask
        if fsp % 2:
            micro //= 10
        year_month = (packed >> 22) & 0x1FFFF
        try:
            moment = datetime(
                year_month // 13,
                year_month % 13,
                (packed >> 17) & 0x1F,
                (packed >> 12) & 0x1F,
                (packed >> 6) & 0x3F,
                packed & 0x3F,
                micro * scale,
            )
        except ValueError:  # a zero date, as the library reads it
            return None, end
        return moment, end

    return decode


def _decoder(column: Any) -> Decoder | None:
    kind = column.type
    if kind in _INTEGERS:
        return _integer(_INTEGERS[kind], not column.unsigned)
    if kind == FIELD_TYPE.NEWDECIMAL:
        return _decimal(column.precision, column.decimals)
    if kind in (FIELD_TYPE.VARCHAR, FIELD_TYPE.STRING):
        name = column.character_set_name
        encoding = RowsEvent.charset_to_encoding(name) if name is not None else "utf-8"
        return _string(2 if column.max_length > 255 else 1, encoding)
    if kind == FIELD_TYPE.DATETIME2:
        return _datetime2(column.fsp)
    return None


#: Decoders per table layout (column names and types): a handful of tables, kept for the run.
_plans: dict[tuple[Any, ...], list[tuple[str, Decoder]] | None] = {}


def _layout(columns: list[Any]) -> tuple[Any, ...]:
    return tuple(
        (
            c.name,
            c.type,
            c.unsigned,
            c.character_set_name,
            getattr(c, "max_length", 0),
            getattr(c, "precision", 0),
            getattr(c, "decimals", 0),
            getattr(c, "fsp", 0),
        )
        for c in columns
    )


#: The plan of each table map's column list (a frozen schema hands the same list to every
#: rows event of its table): working out the layout key costs ~10 µs an event. The list is
#: kept with its plan, so its id is not reused while it is here; a DDL statement brings a new
#: list (a new table map), hence a new entry.
_plans_by_list: dict[int, tuple[list[Any], list[tuple[str, Decoder]] | None]] = {}


def _plan(columns: list[Any]) -> list[tuple[str, Decoder]] | None:
    known = _plans_by_list.get(id(columns))
    if known is not None and known[0] is columns:
        return known[1]
    key = _layout(columns)
    if key not in _plans:
        decoders = [(c.name, _decoder(c)) for c in columns]
        usable = all(name and decoder for name, decoder in decoders)
        _plans[key] = decoders if usable else None  # type: ignore[assignment]
    if len(_plans_by_list) >= 64:  # table maps read again after many reconnections
        _plans_by_list.clear()
    _plans_by_list[id(columns)] = (columns, _plans[key])
    return _plans[key]


def decode_rows(event: Any) -> list[dict[str, Any]] | None:
    """The rows of a write or delete rows event (column name -> value), or None when this
    event needs the library (then nothing has been read from it)."""
    columns = event.columns
    count = len(columns)
    if count != event.number_of_columns or not event.complete:
        return None
    bitmap = int.from_bytes(event.columns_present_bitmap, "little")
    if bitmap != (1 << count) - 1:  # a partial row image (binlog_row_image != FULL)
        return None
    plan = _plan(columns)
    if plan is None:
        return None
    data = event.packet.read(event.event_size - event.packet.read_bytes)
    null_bytes = (count + 7) // 8
    rows = []
    pos, end = 0, len(data)
    while pos < end:
        nulls = int.from_bytes(data[pos : pos + null_bytes], "little")
        pos += null_bytes
        values: dict[str, Any] = {}
        for name, decode in plan:
            if nulls & 1:
                values[name] = None
            else:
                values[name], pos = decode(data, pos)
            nulls >>= 1
        rows.append(values)
    return rows
