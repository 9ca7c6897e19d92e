"""Binary encodings of values: postings, counters, and MongoDB chunk payloads.

Flat bytes, not nested Python objects, because unpickling nested dicts costs
more than the work itself between actors (DESIGN.md, measured facts).
"""

from __future__ import annotations

import struct
from array import array
from typing import Iterable

import numpy as np

_POSTING_HEAD = struct.Struct("<II")
_U64 = struct.Struct("<Q")


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


def encode_columns(keys: list[bytes], values: list[bytes | None]) -> bytes:
    """Entries as one columnar blob: n, key lengths, value lengths (-1 = delete),
    all keys, all values. Built with C-level joins, no per-entry struct packing."""
    key_lens = np.fromiter(map(len, keys), dtype="<u4", count=len(keys))
    val_lens = np.fromiter((-1 if v is None else len(v) for v in values), dtype="<i4", count=len(values))
    return b"".join((
        _U32.pack(len(keys)), key_lens.tobytes(), val_lens.tobytes(),
        b"".join(keys), b"".join(v for v in values if v is not None),
    ))


def encode_entries(entries: Iterable[tuple[bytes, bytes | None]]) -> bytes:
    """(key, value-or-None-for-delete) pairs -> one blob for a MongoDB chunk."""
    entries = list(entries)
    return encode_columns([k for k, _ in entries], [v for _, v in entries])


def decode_entries(blob: bytes) -> list[tuple[bytes, bytes | None]]:
    (n,) = _U32.unpack_from(blob, 0)
    key_lens = np.frombuffer(blob, dtype="<u4", count=n, offset=4)
    val_lens = np.frombuffer(blob, dtype="<i4", count=n, offset=4 + 4 * n)
    key_end = np.cumsum(key_lens, dtype=np.int64) + (4 + 8 * n)
    val_end = np.cumsum(np.maximum(val_lens, 0), dtype=np.int64) + int(key_end[-1] if n else 4 + 8 * n)
    entries, k_start, v_start = [], 4 + 8 * n, int(key_end[-1]) if n else 4 + 8 * n
    for k_stop, v_stop, v_len in zip(key_end.tolist(), val_end.tolist(), val_lens.tolist()):
        key = blob[k_start:k_stop]
        entries.append((key, None if v_len < 0 else blob[v_start:v_stop]))
        k_start, v_start = k_stop, v_stop
    return entries


def columnar_count(blob: bytes) -> int:
    return _U32.unpack_from(blob, 0)[0]


def split_columnar(blob: bytes, max_entries: int, max_bytes: int = 8 << 20) -> list[tuple[int, bytes]]:
    """Re-cut one columnar blob into chunks of at most `max_entries` entries and about
    `max_bytes`, slicing its arrays and byte runs (no per-entry Python work)."""
    (n,) = _U32.unpack_from(blob, 0)
    if n <= max_entries and len(blob) <= max_bytes:
        return [(n, blob)] if n else []
    key_lens = np.frombuffer(blob, dtype="<u4", count=n, offset=4)
    val_lens = np.frombuffer(blob, dtype="<i4", count=n, offset=4 + 4 * n)
    k_off = np.concatenate(([0], np.cumsum(key_lens, dtype=np.int64))) + (4 + 8 * n)
    v_off = np.concatenate(([0], np.cumsum(np.maximum(val_lens, 0), dtype=np.int64))) + int(k_off[-1])
    sizes = key_lens.astype(np.int64) + np.maximum(val_lens, 0) + 8
    chunks, start = [], 0
    while start < n:
        stop = min(start + max_entries, n)
        total = np.cumsum(sizes[start:stop])
        if total[-1] > max_bytes:
            stop = start + max(1, int(np.searchsorted(total, max_bytes, side="right")))
        m = stop - start
        chunks.append((m, b"".join((
            _U32.pack(m), key_lens[start:stop].tobytes(), val_lens[start:stop].tobytes(),
            blob[k_off[start]:k_off[stop]], blob[v_off[start]:v_off[stop]],
        ))))
        start = stop
    return chunks
