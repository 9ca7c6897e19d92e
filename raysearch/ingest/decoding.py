"""The one decoding layer for request bodies and query parameters (pure, no Ray).

Every endpoint that reads a body goes through `loads`; every typed query
parameter through `query_bool` / `query_int` / `query_enum`. Anything refused
here becomes an `InvalidJSON` / `InvalidRequest` (400) naming the problem, never
an exception further in (a RecursionError, UnicodeEncodeError when storing,
ValueError from Python's int digit limit, OverflowError from BSON...).

JSON is decoded by orjson: strict by construction (refuses invalid UTF-8, lone
UTF-16 surrogates from `\\u` escapes, NaN/Infinity literals, numbers that
overflow a double, raw control characters in strings, nesting deeper than
1,024) and about 3-10x faster than the standard library. The one thing it is
lenient about is integers beyond 64 bits (it turns them into lossy floats), so
a body holding a run of 19+ digits is re-checked exactly: integers must fit a
signed 64-bit integer, as in MongoDB/BSON and Elasticsearch's `long`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from raysearch.errors import InvalidJSON, InvalidRequest

MAX_DEPTH = 1024  # orjson's own limit; documents are further limited to 20 (validation.py)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_INT_PARAM = re.compile(r"[+-]?[0-9]{1,18}")
TRUE = frozenset({"true", "1"})
FALSE = frozenset({"false", "0"})

# Whether a body may hold an integer beyond 64 bits, asked in C passes: digits -> "0", "." kept,
# the rest -> " ", then a substring search for 19 digits after something that is not a "."
# (a float's fraction is no integer: float32 values written as Python floats, 0.0012345000356435776,
# run to 19 digits). A regex [0-9]{19,} took 60-90 us on a 3 KB line of a 256-d vector.
_DIGIT_MAP = bytes(0x30 if 0x30 <= i <= 0x39 else 0x2E if i == 0x2E else 0x20 for i in range(256))
_LONG_RUN = b"0" * 19


def has_long_digit_run(body: bytes) -> bool:
    """Whether 19 or more digits follow one another outside a fraction (an integer literal
    that may not fit 64 bits: checked exactly then)."""
    mapped = body.translate(_DIGIT_MAP)
    return b" " + _LONG_RUN in mapped or mapped.startswith(_LONG_RUN)


def loads(body: bytes | str, what: str = "request body") -> Any:
    """Decode one JSON value; InvalidJSON (400) naming the problem and where."""
    if isinstance(body, str):
        try:
            body = body.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidJSON(f"{what} is not valid UTF-8 (it holds a lone surrogate)") from None
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSON(f"{what} is not valid JSON: {_reason(exc)}") from None
    except RecursionError:  # not raised by orjson today (it stops at depth 1,024); kept as a guard
        raise InvalidJSON(f"{what} is nested deeper than {MAX_DEPTH} levels") from None
    if has_long_digit_run(body) and may_hold_a_long_integer(value):
        _check_integers(body, what)
    return value


_TWO_63 = float(2**63)


def may_hold_a_long_integer(value: Any) -> bool:
    """Whether a decoded value holds a number an integer literal beyond 64 bits could have
    become: an int outside int64 (orjson keeps integers up to 2**64 - 1 exact) or a float of
    magnitude 2**63 or more (orjson turns larger integer literals into floats). Only then is
    the body parsed again exactly. The byte check alone also fires on digits inside strings
    (2**64 written out in a Debian package's description), and the exact parse, in Python's
    json, cost 100 us a document of a 256-d vector: most of the ingress's time per vector
    document on that corpus. A list of numbers is bounded by its min and max, in C."""
    stack = [value]
    while stack:
        x = stack.pop()
        kind = type(x)
        if kind is dict:
            stack.extend(x.values())
        elif kind is list:
            if len(x) > 8:
                try:
                    if -_TWO_63 < min(x) and max(x) < _TWO_63:
                        continue  # numbers only, each inside int64 (ints) and below 2**63 (floats)
                except TypeError:  # not all numbers: strings, objects, lists, null among them
                    pass
            stack.extend(x)
        elif kind is int:
            if not INT64_MIN <= x <= INT64_MAX:
                return True
        elif kind is float:
            if not -_TWO_63 < x < _TWO_63:
                return True
    return False


def _reason(exc: orjson.JSONDecodeError) -> str:
    msg = exc.msg
    if msg == "depth limit exceeded":
        msg = f"nested deeper than {MAX_DEPTH} levels"
    elif exc.doc and _looks_like_constant(exc.doc, exc.pos):
        msg = "NaN and Infinity are not JSON numbers"
    elif "infinity when parsed as double" in msg:
        msg = "number out of range (a float must fit a 64-bit double; an integer a signed 64-bit integer)"
    return f"{msg} at line {exc.lineno} column {exc.colno}"


def _looks_like_constant(doc, pos: int) -> bool:
    head = doc[max(pos - 1, 0) : pos + 9]
    if isinstance(head, (bytes, bytearray, memoryview)):
        head = bytes(head).decode("utf-8", "replace")
    return any(head[i:].lstrip("-").startswith(("NaN", "Infinity", "nan", "inf", "Inf")) for i in (0, 1))


def _check_integers(body: bytes, what: str) -> None:
    """Exact check of integer literals (only for bodies with a long run of digits)."""

    def parse_int(text: str) -> int:
        if len(text.lstrip("-")) > 19:
            raise _OutOfRange(text)
        value = int(text)
        if not INT64_MIN <= value <= INT64_MAX:
            raise _OutOfRange(text)
        return value

    try:
        json.loads(body, parse_int=parse_int)
    except _OutOfRange as exc:
        digits = str(exc)
        shown = digits if len(digits) <= 30 else f"{digits[:12]}...({len(digits)} digits)"
        raise InvalidJSON(f"{what}: integer {shown} is out of range; integers must fit a signed 64-bit integer "
                          f"({INT64_MIN}..{INT64_MAX})") from None
    except RecursionError:
        raise InvalidJSON(f"{what} is nested too deeply") from None


class _OutOfRange(Exception):
    pass


def json_object(body: bytes, what: str, empty_ok: bool = False) -> dict | None:
    """A body that must be one JSON object (or nothing, when empty_ok)."""
    if not body.strip():
        if empty_ok:
            return None
        raise InvalidRequest(f"{what} is empty; send a JSON object")
    value = loads(body, what)
    if not isinstance(value, dict):
        raise InvalidRequest(f"{what} must be a JSON object, not {_json_type(value)}")
    return value


def _json_type(value) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


# --------------------------------------------------------------- query parameters
def query_bool(name: str, value: str) -> bool:
    v = value.strip().lower()
    if v in TRUE:
        return True
    if v in FALSE:
        return False
    raise InvalidRequest(f"query parameter {name!r} must be true, false, 1 or 0, not {_show(value)}")


def query_int(name: str, value: str) -> int:
    v = value.strip()
    if not _INT_PARAM.fullmatch(v):
        raise InvalidRequest(f"query parameter {name!r} must be an integer (at most 18 digits), not {_show(value)}")
    return int(v)


def query_enum(name: str, value: str, allowed: tuple[str, ...]) -> str:
    v = value.strip().lower()
    if v not in allowed:
        raise InvalidRequest(f"query parameter {name!r} must be one of {', '.join(allowed)}, not {_show(value)}")
    return v


def _show(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "...")


def content_length(header: str | None) -> int | None:
    """The declared Content-Length if it is a plain decimal number, else None (read the body)."""
    if header is None:
        return None
    v = header.strip()
    if not v.isascii() or not v.isdigit() or len(v) > 19:
        raise InvalidRequest(f"Content-Length must be a decimal number of bytes, not {_show(header)}")
    return int(v)
