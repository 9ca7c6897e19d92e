"""Binary encodings of values: postings, counters, and MongoDB chunk payloads.

Flat bytes, not nested Python objects, because unpickling nested dicts costs
more than the work itself between actors (docs/design.md, measured facts).

numpy is imported inside the functions that read: the 12 IndexWorkers only
write blocks (with `array`), and not loading numpy saves ~20 MB in each.
"""

from __future__ import annotations

import struct
from array import array
from typing import Iterable


_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")


def encode_block(local: array, tfs: array, lengths: array, positions: array) -> bytes:
    """A posting block: n, then n doc numbers (relative to the batch's base), n term
    frequencies, n field lengths, and all positions (each document's tf of them, in order).
    Columns of u32 so that search reads them with np.frombuffer, without a Python loop."""
    return b"".join((_U32.pack(len(local)), local.tobytes(), tfs.tobytes(), lengths.tobytes(), positions.tobytes()))


def block_columns(value: bytes) -> tuple:
    """(relative doc numbers, tfs, field lengths, positions) of a block, as u32 views."""
    import numpy as np
    (n,) = _U32.unpack_from(value, 0)
    cols = np.frombuffer(value, dtype="<u4", offset=4)
    return cols[:n], cols[n : 2 * n], cols[2 * n : 3 * n], cols[3 * n :]


def block_size(value: bytes) -> int:
    return _U32.unpack_from(value, 0)[0]


def _joined_blocks(blocks: list[bytes]) -> tuple:
    """Many blocks read at once: (their joined u32 words, each block's size n, and for every
    posting in order the word index of its doc number: its block's start + 1 + its rank)."""
    import numpy as np
    words = np.frombuffer(b"".join(blocks), dtype="<u4")
    lengths = np.fromiter((len(b) >> 2 for b in blocks), dtype=np.int64, count=len(blocks))
    starts = np.zeros(len(blocks), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    sizes = words[starts].astype(np.int64)
    ends = np.cumsum(sizes)
    first = np.repeat(starts + 1 - (ends - sizes), sizes) + np.arange(int(ends[-1]))
    return words, sizes, first


def dead_in_blocks(blocks: list[bytes], live) -> tuple:
    """(postings, dead postings) per block, for many blocks of one batch at once: a purge
    rewrites only the blocks holding some dead and some live documents, drops those holding
    only dead ones, and leaves the rest (most blocks: a rare term's block holds one or two
    documents) without a numpy call each. `live`: booleans over the batch's local numbers."""
    import numpy as np
    if not blocks:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    words, sizes, first = _joined_blocks(blocks)
    owner = np.repeat(np.arange(len(blocks)), sizes)
    dead = np.bincount(owner, weights=~live[words[first]], minlength=len(blocks)).astype(np.int64)
    return sizes, dead


def blocks_columns(blocks: list[bytes], bases: list[int]) -> tuple:
    """(doc numbers int64, tfs float64, field lengths float64) of one term's blocks, oldest
    batch first, each block's numbers offset by its batch's base: `block_columns` for all of
    them in a few numpy passes over their joined bytes. A common term has a block in nearly
    every batch (2,000 at half a million documents), and a numpy call or three per block
    cost more than the scan that read them."""
    import numpy as np
    if not blocks:
        return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0)
    if len(blocks) == 1:
        docs, tfs, lengths, _ = block_columns(blocks[0])
        return docs.astype(np.int64) + bases[0], tfs.astype(np.float64), lengths.astype(np.float64)
    words, sizes, first = _joined_blocks(blocks)
    step = np.repeat(sizes, sizes)  # tfs follow the doc numbers, lengths follow the tfs
    docs = words[first].astype(np.int64) + np.repeat(np.asarray(bases, dtype=np.int64), sizes)
    return docs, words[first + step].astype(np.float64), words[first + 2 * step].astype(np.float64)


def block_keeping(value: bytes, live) -> bytes | None:
    """The block with only the documents whose local number is True in `live` (booleans
    over the batch's local numbers: a purge of dead postings); None when nothing is left,
    the very same bytes when nothing leaves."""
    import numpy as np
    docs, tfs, lengths, positions = block_columns(value)
    keep = live[docs]
    if keep.all():
        return value
    if not keep.any():
        return None
    pos_keep = np.repeat(keep, tfs.astype(np.int64))
    return b"".join((_U32.pack(int(keep.sum())), docs[keep].tobytes(), tfs[keep].tobytes(),
                     lengths[keep].tobytes(), positions[pos_keep].tobytes()))


def blocks_keeping(blocks: list[bytes], live) -> list[bytes | None]:
    """`block_keeping` of many blocks of one batch at once (what a purge rewrites): a few numpy
    passes over their joined words instead of a dozen numpy calls per block. A purge
    rewrites thousands of blocks, most of them holding a handful of postings, and the calls
    per block were most of its CPU after the reads (benchmarks/README.md, "Ingest and
    updates, continued")."""
    import numpy as np
    if not blocks:
        return []
    words, n, doc_at = _joined_blocks(blocks)  # doc_at: the word of each posting's doc number
    owner = np.repeat(np.arange(len(blocks)), n)  # block of each posting
    first = np.cumsum(n) - n  # index of each block's first posting
    docs = words[doc_at]
    tfs = words[doc_at + n[owner]].astype(np.int64)
    lens = words[doc_at + 2 * n[owner]]
    keep = live[docs]
    # positions: a block's follow its three columns; a posting's follow those of the ones before it
    tf_before = np.cumsum(tfs) - tfs
    rank = np.arange(len(owner)) - first[owner]  # of each posting within its block
    pos_start = doc_at - rank + 3 * n[owner] + tf_before - tf_before[first[owner]]
    of_posting = np.repeat(np.arange(len(owner)), tfs)  # posting of each position
    pos_words = words[pos_start[of_posting] + np.arange(len(of_posting)) - tf_before[of_posting]]
    pos_keep = keep[of_posting]
    # the rewritten blocks, laid out one after another
    new_n = np.bincount(owner, weights=keep, minlength=len(blocks)).astype(np.int64)
    new_pos = np.bincount(owner, weights=tfs * keep, minlength=len(blocks)).astype(np.int64)
    size = 1 + 3 * new_n + new_pos
    out_start = np.cumsum(size) - size
    out = np.empty(int(size.sum()), dtype="<u4")
    out[out_start] = new_n
    kept = np.flatnonzero(keep)
    block = owner[kept]
    rank = np.cumsum(keep)[kept] - 1 - (np.cumsum(new_n) - new_n)[block]
    at = out_start[block] + 1 + rank
    out[at] = docs[kept]
    out[at + new_n[block]] = tfs[kept]
    out[at + 2 * new_n[block]] = lens[kept]
    kept_pos = np.flatnonzero(pos_keep)
    block = owner[of_posting[kept_pos]]
    rank = np.cumsum(pos_keep)[kept_pos] - 1 - (np.cumsum(new_pos) - new_pos)[block]
    out[out_start[block] + 1 + 3 * new_n[block] + rank] = pos_words[kept_pos]
    raw = out.tobytes()
    return [None if k == 0 else value if k == m else raw[a * 4:(a + z) * 4]
            for value, k, m, a, z in zip(blocks, new_n.tolist(), n.tolist(), out_start.tolist(), size.tolist())]


def block_postings(value: bytes, base: int) -> list[tuple[int, int, int, list[int]]]:
    """(doc number, tf, field length, positions) per document of a block (phrases, tests)."""
    docs, tfs, lengths, positions = block_columns(value)
    out, start = [], 0
    all_positions = positions.tolist()
    for doc, tf, length in zip(docs.tolist(), tfs.tolist(), lengths.tolist()):
        out.append((base + doc, tf, length, all_positions[start : start + tf]))
        start += tf
    return out


def encode_u64(n: int) -> bytes:
    return _U64.pack(n)


def decode_u64(value: bytes | None) -> int:
    return _U64.unpack(value)[0] if value else 0




def encode_columns(keys: list[bytes], values: list[bytes | None]) -> bytes:
    """Entries as one columnar blob: n, key lengths, value lengths (-1 = delete),
    all keys, all values. Built with C-level joins, no per-entry struct packing."""
    import numpy as np
    key_lens = np.fromiter(map(len, keys), dtype="<u4", count=len(keys))
    if None in values:  # deletes: -1 (rarer than puts, which take the C-level path below)
        val_lens = np.fromiter((-1 if v is None else len(v) for v in values), dtype="<i4", count=len(values))
    else:
        val_lens = np.fromiter(map(len, values), dtype="<i4", count=len(values))
    return b"".join((
        _U32.pack(len(keys)), key_lens.tobytes(), val_lens.tobytes(),
        b"".join(keys), b"".join(v for v in values if v is not None),
    ))


def encode_entries(entries: Iterable[tuple[bytes, bytes | None]]) -> bytes:
    """(key, value-or-None-for-delete) pairs -> one blob for a MongoDB chunk."""
    entries = list(entries)
    return encode_columns([k for k, _ in entries], [v for _, v in entries])


def decode_entries(blob: bytes) -> list[tuple[bytes, bytes | None]]:
    _, _, val_lens, k_off, v_off = _columnar_layout(blob)
    k, v = k_off.tolist(), v_off.tolist()
    return [(blob[k[i]:k[i + 1]], None if length < 0 else blob[v[i]:v[i + 1]])
            for i, length in enumerate(val_lens.tolist())]


def columnar_count(blob: bytes) -> int:
    return _U32.unpack_from(blob, 0)[0]


def _columnar_layout(blob: bytes):
    """(n, key lengths, value lengths, key offsets, value offsets) of a columnar blob;
    the offsets have n + 1 items (the last is the end of the keys / of the values)."""
    import numpy as np
    (n,) = _U32.unpack_from(blob, 0)
    key_lens = np.frombuffer(blob, dtype="<u4", count=n, offset=4)
    val_lens = np.frombuffer(blob, dtype="<i4", count=n, offset=4 + 4 * n)
    k_off = np.concatenate(([0], np.cumsum(key_lens, dtype=np.int64))) + (4 + 8 * n)
    v_off = np.concatenate(([0], np.cumsum(np.maximum(val_lens, 0), dtype=np.int64))) + int(k_off[-1])
    return n, key_lens, val_lens, k_off, v_off


def columnar_weights(blob: bytes, heavy_prefix: int) -> "np.ndarray":
    """Per entry of a columnar blob: the block size (its leading u32) for entries whose key
    starts with the byte `heavy_prefix` and whose value has one, else 1. Vectorised."""
    import numpy as np
    n, _, val_lens, k_off, v_off = _columnar_layout(blob)
    raw = np.frombuffer(blob, dtype=np.uint8)
    heavy = (raw[k_off[:n]] == heavy_prefix) & (val_lens >= 4)
    at = np.where(heavy, v_off[:n], 0)
    sizes = (raw[at].astype(np.int64) | raw[at + 1].astype(np.int64) << 8
             | raw[at + 2].astype(np.int64) << 16 | raw[at + 3].astype(np.int64) << 24)
    return np.where(heavy, sizes, 1)


def split_columnar(blob: bytes, max_entries: int, max_bytes: int = 8 << 20,
                   weights: "np.ndarray | None" = None) -> list[tuple[int, int, bytes]]:
    """Re-cut one columnar blob into chunks (entries, weight, blob) of at most `max_entries`
    in weight (default: 1 per entry; an entry heavier than that alone forms a chunk) and
    about `max_bytes`, slicing its arrays and byte runs (no per-entry Python work)."""
    import numpy as np
    (n,) = _U32.unpack_from(blob, 0)
    weights = np.ones(n, dtype=np.int64) if weights is None else weights
    total_weight = int(weights.sum())
    if total_weight <= max_entries and len(blob) <= max_bytes:
        return [(n, total_weight, blob)] if n else []
    n, key_lens, val_lens, k_off, v_off = _columnar_layout(blob)
    sizes = key_lens.astype(np.int64) + np.maximum(val_lens, 0) + 8
    chunks, start = [], 0
    while start < n:
        stop = min(start + max_entries, n)
        total = np.cumsum(sizes[start:stop])
        weight = np.cumsum(weights[start:stop])
        fit = min(int(np.searchsorted(total, max_bytes, side="right")),
                  int(np.searchsorted(weight, max_entries, side="right")))
        stop = start + max(1, min(fit, stop - start))
        m = stop - start
        chunks.append((m, int(weights[start:stop].sum()), b"".join((
            _U32.pack(m), key_lens[start:stop].tobytes(), val_lens[start:stop].tobytes(),
            blob[k_off[start]:k_off[stop]], blob[v_off[start]:v_off[stop]],
        ))))
        start = stop
    return chunks
