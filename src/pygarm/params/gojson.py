"""Go-compatible JSON: the one place that knows how GARM's Go encoder writes values.

GARM clients compare bytes and decode with Go's ``encoding/json``, so pygarm must write JSON the way Go
does (docs/garm-protocol.md#json-encoding, docs/design.md#matching-gos-json): keys in struct order,
``omitempty`` zero values dropped, ``[]byte`` as standard base64, times as RFC 3339 with trimmed nanoseconds,
the zero time as ``0001-01-01T00:00:00Z``, and ``<``, ``>``, ``&``, U+2028 and U+2029 escaped. REST responses
and event payloads both go through :func:`dumps`, so the two can never drift apart.
"""

from __future__ import annotations

import base64
import binascii
import weakref
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from pydantic import BeforeValidator, PlainSerializer

GO_ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)
ZERO_UUID = "00000000-0000-0000-0000-000000000000"

# Go's encoder escapes these inside strings; none of them can occur outside a string in JSON, so a byte
# replacement on the encoded document is exact.
_HTML_ESCAPES = (
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)


def format_go_time(value: datetime) -> str:
    """Format like Go's ``time.Time.MarshalJSON`` (RFC 3339, nanoseconds with trailing zeros trimmed)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if value.year == 1 and value == GO_ZERO_TIME:
        return "0001-01-01T00:00:00Z"
    base = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        base += "." + f"{value.microsecond:06d}".rstrip("0")
    offset = value.utcoffset()
    if not offset:
        return base + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"{base}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def parse_go_time(value: Any) -> Any:
    """Accept Go's time strings (including the zero time, which Python's parser rejects as year 1)."""
    if isinstance(value, str) and value.startswith("0001-01-01T00:00:00"):
        return GO_ZERO_TIME
    return value


def encode_base64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def decode_base64(value: Any) -> Any:
    """Go decodes ``[]byte`` from standard base64; invalid input is a decoding error, like in Go."""
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("illegal base64 data") from exc
    return value


GoTime = Annotated[
    datetime,
    BeforeValidator(parse_go_time),
    PlainSerializer(format_go_time, return_type=str, when_used="json"),
]
"""A ``time.Time``: serialized the Go way, parsed from Go's strings."""

GoBytes = Annotated[
    bytes,
    BeforeValidator(decode_base64),
    PlainSerializer(encode_base64, return_type=str, when_used="json"),
]
"""A ``[]byte``: standard base64 on the wire, as Go's encoder writes it."""


def go_escape(document: bytes) -> bytes:
    """Apply Go's HTML-safe escaping to an already encoded JSON document."""
    for raw, escaped in _HTML_ESCAPES:
        if raw in document:
            document = document.replace(raw, escaped)
    return document


def dumps(value: Any) -> bytes:
    """Encode a value (a wire model, a list of them, or plain data) to Go-compatible compact JSON bytes.

    A value :func:`dumps_for_reuse` encoded is not encoded again: its bytes are handed out once."""
    if _for_reuse:
        kept = _for_reuse.pop(id(value), None)
        if kept is not None and kept[0]() is value:
            return kept[1]
    return go_escape(orjson.dumps(value, default=_default, option=orjson.OPT_PASSTHROUGH_DATETIME))


_for_reuse: dict[int, tuple[weakref.ref[Any], bytes]] = {}
"""Encodings waiting for their next :func:`dumps`, by the identity of the value (alive: a weak reference
drops the entry with the value)."""


def dumps_for_reuse(value: Any) -> bytes:
    """:func:`dumps`, and the next ``dumps`` of this very object returns the same bytes without encoding.

    A write encodes the entity for its change-log payload, and its REST response encodes the same object
    right after: the same bytes, encoded once (``PUT /pools/{id}``: ~25 µs of a ~600 µs request,
    docs/performance.md). The value must not be changed in between; the store's wire models are built
    for the write and not changed afterwards."""
    encoded = dumps(value)
    key = id(value)
    _for_reuse[key] = (weakref.ref(value, lambda _gone: _for_reuse.pop(key, None)), encoded)
    return encoded


def _default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if dump is not None:
        return dump(mode="json", by_alias=True)
    if isinstance(value, datetime):
        return format_go_time(value)
    if isinstance(value, bytes):
        return encode_base64(value)
    raise TypeError(f"cannot encode {type(value).__name__} as Go JSON")


def utcnow() -> datetime:
    return datetime.now(UTC)
