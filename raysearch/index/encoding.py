"""Binary encodings of values: postings, counters, and MongoDB chunk payloads.

Flat bytes, not nested Python objects, because unpickling nested dicts costs
more than the work itself between actors (DESIGN.md, measured facts).
"""

from __future__ import annotations

import struct
from array import array
from typing import Iterable

_POSTING_HEAD = struct.Struct("<II")
_U64 = struct.Struct("<Q")
_ENTRY_HEAD = struct.Struct("<Ii")


def encode_posting(tf: int, field_length: int, positions: Iterable[int]) -> bytes:
    return _POSTING_HEAD.pack(tf, field_length) + array("I", positions).tobytes()


def decode_posting(value: bytes) -> tuple[int, int, list[int]]:
    tf, dl = _POSTING_HEAD.unpack_from(value)
    positions = array("I")
    positions.frombytes(value[_POSTING_HEAD.size :])
    return tf, dl, positions.tolist()


def posting_tf_dl(value: bytes) -> tuple[int, int]:
    return _POSTING_HEAD.unpack_from(value)


def encode_u64(n: int) -> bytes:
    return _U64.pack(n)


def decode_u64(value: bytes | None) -> int:
    return _U64.unpack(value)[0] if value else 0


_U32 = struct.Struct("<I")


def encode_key_list(keys: list[bytes]) -> bytes:
    out = bytearray()
    for key in keys:
        out += _U32.pack(len(key))
        out += key
    return bytes(out)


def decode_key_list(blob: bytes) -> list[bytes]:
    keys, offset, size = [], 0, len(blob)
    while offset < size:
        (n,) = _U32.unpack_from(blob, offset)
        offset += 4
        keys.append(blob[offset : offset + n])
        offset += n
    return keys


def encode_entries(entries: Iterable[tuple[bytes, bytes | None]]) -> bytes:
    """(key, value-or-None-for-delete) pairs -> one blob for a MongoDB chunk."""
    out = bytearray()
    for key, value in entries:
        out += _ENTRY_HEAD.pack(len(key), -1 if value is None else len(value))
        out += key
        if value is not None:
            out += value
    return bytes(out)


def decode_entries(blob: bytes) -> list[tuple[bytes, bytes | None]]:
    entries = []
    offset, size = 0, len(blob)
    view = memoryview(blob)
    while offset < size:
        key_len, value_len = _ENTRY_HEAD.unpack_from(view, offset)
        offset += _ENTRY_HEAD.size
        key = bytes(view[offset : offset + key_len])
        offset += key_len
        if value_len < 0:
            value = None
        else:
            value = bytes(view[offset : offset + value_len])
            offset += value_len
        entries.append((key, value))
    return entries


def chunk_entries(entries: list[tuple[bytes, bytes | None]], max_entries: int, max_bytes: int = 8 << 20):
    """Split entries into chunks of at most `max_entries` and about `max_bytes`."""
    chunk, chunk_bytes = [], 0
    for key, value in entries:
        size = len(key) + (len(value) if value else 0) + _ENTRY_HEAD.size
        if chunk and (len(chunk) >= max_entries or chunk_bytes + size > max_bytes):
            yield chunk
            chunk, chunk_bytes = [], 0
        chunk.append((key, value))
        chunk_bytes += size
    if chunk:
        yield chunk
