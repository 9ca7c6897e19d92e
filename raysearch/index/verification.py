"""Comparison of two sorted streams of a shard's mirrored entries (pure, no Ray).

`verify` walks RocksDB and MongoDB's replayed state side by side in key order,
so neither is ever held whole in memory: a merge join over two sorted iterators.
Posting keys of one (field, term) are adjacent (P<field>\\0<term>\\0<opstamp>),
so lists are judged as they stream past; any other key is judged alone.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from raysearch.index import keys as K

_END = object()


def _next(it: Iterator):
    return next(it, _END)


def compare_sorted(left: Iterable[tuple[bytes, bytes]], right: Iterable[tuple[bytes, bytes]],
                   max_mismatches: int = 1000, progress=None, every: int = 100_000) -> dict:
    """{"entries": keys seen, "terms": posting lists seen, "mismatches": [...]} of two
    key-sorted (key, value) streams; `progress(entries)` is called every `every` keys."""
    a, b = iter(left), iter(right)
    x, y = _next(a), _next(b)
    entries = terms = 0
    mismatches: list[dict] = []
    current, current_ok = None, True  # the (field, term) streaming past and whether it matches

    def close_list():
        nonlocal terms
        if current is not None:
            terms += 1
            if not current_ok and len(mismatches) < max_mismatches:
                mismatches.append({"field": current[0], "term": current[1]})

    while x is not _END or y is not _END:
        if y is _END or (x is not _END and x[0] < y[0]):
            key, same = x[0], False
            x = _next(a)
        elif x is _END or y[0] < x[0]:
            key, same = y[0], False
            y = _next(b)
        else:
            key, same = x[0], x[1] == y[1]
            x, y = _next(a), _next(b)
        entries += 1
        if progress is not None and entries % every == 0:
            progress(entries)
        if key[:1] == K.POSTING:
            field, term, _ = K.split_block_key(key)
            if (field, term) != current:
                close_list()
                current, current_ok = (field, term), True
            current_ok = current_ok and same
        elif not same and len(mismatches) < max_mismatches:
            mismatches.append({"key": key.decode(errors="replace")[:200]})
    close_list()
    return {"entries": entries, "terms": terms, "mismatches": mismatches}
