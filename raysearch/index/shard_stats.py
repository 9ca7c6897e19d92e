"""One shard's statistics: document frequencies, field lengths, distinct terms per field,
the document count, and the dense document numbers a query scores over.

Derived data: rebuilt from the per-document `T` entries when the shard opens (or read
from its snapshot), then kept up to date by every applied batch (index/shard_index.py).
"""

from __future__ import annotations

import threading
from itertools import repeat

import numpy as np

from raysearch.index.encoding import block_size


def term_key(prefix: bytes) -> tuple[str, str]:
    """(field, term) of a term prefix b"P" + field + SEP + term + SEP (index/keys.py)."""
    field, term = prefix[1:-1].decode().split("\x00", 1)
    return field, term


class ShardStats:
    """Document frequencies, field statistics and the document count of one shard.

    Derived data: rebuilt from the per-document `T` entries when the shard opens
    (so they are never written per posting, and never disagree with the
    postings), then updated after each applied batch.
    """

    def __init__(self):
        self.df: dict[tuple[str, str], int] = {}
        self.fields: dict[str, list[int]] = {}  # field -> [documents having it, total length]
        self.term_counts: dict[str, int] = {}  # field -> distinct terms (kept as they change: O(1) metadata)
        self.docs = 0
        self._sorted: dict[str, list[str]] = {}  # field -> sorted terms, built lazily for prefixes
        self._sorted_lock = threading.Lock()
        self._changes = 0  # adds so far: a sorted list built across one is not cached
        # Dense shard-local document numbers (stored in the T entries, assigned per batch
        # from its base), for vectorised scoring. A removed document's number simply has
        # no postings left; doc_ids[number] is None for numbers not (or no longer) held.
        self.doc_ids: list[str | None] = []
        self.live = bytearray()  # 1 at the numbers of live documents (match-all, doc values)
        # Each document number's `_all` length, where `_all` is derived (index/all_field.py).
        # Grown by replacing the array (a query holding the old one reads numbers it knows).
        self.all_lengths = np.zeros(0, dtype=np.int32)

    def set_all_lengths(self, base: int, lengths: list[int]) -> None:
        """The `_all` lengths of the numbers base, base + 1, ..."""
        if not lengths:
            return
        stop = base + len(lengths)
        if stop > len(self.all_lengths):
            grown = np.zeros(max(stop, 2 * len(self.all_lengths), 1024), dtype=np.int32)
            grown[:len(self.all_lengths)] = self.all_lengths
            grown[base:stop] = lengths
            self.all_lengths = grown
        else:
            self.all_lengths[base:stop] = lengths

    def number(self, doc_id: str, docnum: int, live: bool = True) -> None:
        if docnum >= len(self.doc_ids):
            grow = docnum + 1 - len(self.doc_ids)
            # `live` grows first: a query on another thread reads n = len(doc_ids), then
            # live_mask(n), and the GIL may switch between the two extends.
            self.live.extend(bytes(docnum + 1 - len(self.live)))
            self.doc_ids.extend([None] * grow)
        self.doc_ids[docnum] = doc_id
        self.live[docnum] = live

    def number_batch(self, doc_ids: list[str], base: int) -> None:
        """`number(doc_id, base + i, live=False)` for a batch's documents, numbered from `base`
        on (the next unused number, or numbers not yet used): two C-level slice assignments
        instead of a call per document."""
        stop = base + len(doc_ids)
        if stop > len(self.doc_ids):
            # `live` grows first, as in number()
            self.live.extend(bytes(stop - len(self.live)))
            self.doc_ids.extend([None] * (stop - len(self.doc_ids)))
        self.doc_ids[base:stop] = doc_ids
        self.live[base:stop] = bytes(len(doc_ids))

    def revive_batch(self, base: int, count: int) -> None:
        """The numbers base .. base + count - 1 hold documents whose postings are durable: they
        are live from now on."""
        self.live[base:base + count] = b"\x01" * count

    def unnumber_batch(self, base: int, count: int) -> None:
        """`unnumber` of the numbers base .. base + count - 1 (a failed write takes them back)."""
        stop = min(base + count, len(self.doc_ids))
        if stop > base:
            self.doc_ids[base:stop] = [None] * (stop - base)
            self.live[base:stop] = bytes(stop - base)

    def unnumber(self, docnum: int) -> None:
        """A removed document's number holds nothing any more."""
        if docnum < len(self.doc_ids):
            self.doc_ids[docnum] = None
            self.live[docnum] = 0

    def live_mask(self, n: int) -> np.ndarray:
        """Booleans over numbers < n: which hold a live document (a copy)."""
        # A slice is a copy made at once under the GIL: no numpy view ever exports `live`,
        # which an apply on another thread may be growing (a view would make that raise).
        mask = np.frombuffer(self.live[:n], dtype=np.bool_)
        if len(mask) < n:  # numbers being added on another thread are not live yet
            mask = np.concatenate((mask, np.zeros(n - len(mask), dtype=np.bool_)))
        return mask

    def add(self, indexed: list, sign: int) -> None:
        """Count one document's `T` entry in (sign=1) or out (sign=-1)."""
        df = self.df
        for field, length, terms in indexed:
            acc = self.fields.setdefault(field, [0, 0])
            acc[0] += sign
            acc[1] += sign * length
            if acc[0] <= 0:
                del self.fields[field]
            distinct = 0
            for term in terms:
                key = (field, term)
                n = df.get(key, 0) + sign
                if n > 0:
                    df[key] = n
                    distinct += n == 1 and sign > 0
                else:
                    distinct -= df.pop(key, None) is not None
            if distinct:
                self.term_counts[field] = self.term_counts.get(field, 0) + distinct
            with self._sorted_lock:
                self._changes += 1
                self._sorted.pop(field, None)
        self.docs += sign

    def add_batch(self, field_totals: dict[str, list[int]], documents: int, prefixes: list[bytes],
                  blocks: list[bytes], block_terms: list[tuple[str, str]] | None = None,
                  more: tuple[list[tuple[str, str]], list[int]] = ((), ())) -> None:
        """Count a batch's `documents` new documents in: per field [documents, total length]
        as the worker summed them from their term lists, document frequencies from the
        batch's blocks (one per (field, term), holding each document at most once, so a
        block's size is its df increment). The same result as `add(indexed, 1)` per document
        (a unit test compares them), with Python work per block instead of per (document,
        term): a document has ~100 such pairs, a batch ~16 blocks per document.
        `block_terms` are the prefixes' (field, term), when the worker sent them. `more`:
        ((field, term), documents) counted without blocks (a derived `_all`'s terms)."""
        keys = block_terms if block_terms else list(map(term_key, prefixes))
        counts = list(map(block_size, blocks))
        if more[0]:
            keys, counts = [*keys, *more[0]], [*counts, *more[1]]
        self._count(field_totals, documents, (keys, counts), 1)

    def remove_batch(self, field_totals: dict[str, list[int]], documents: int,
                     term_counts: dict[tuple[str, str], int]) -> None:
        """Count removed documents out: their per-field totals, and per (field, term) how many
        of them held it (as `add(indexed, -1)` per document would)."""
        self._count(field_totals, documents, (list(term_counts), list(term_counts.values())), -1)

    def _count(self, field_totals: dict[str, list[int]], documents: int,
               term_counts_of: tuple[list[tuple[str, str]], list[int]], sign: int) -> None:
        """Per field its totals, and per (field, term) of `term_counts_of` = (keys, counts) a
        document-frequency change of sign * count (each key once)."""
        fields = self.fields
        touched = set()
        for field, (docs, length) in field_totals.items():
            acc = fields.get(field)
            if acc is None:
                acc = fields[field] = [0, 0]
            acc[0] += sign * docs
            acc[1] += sign * length
            if acc[0] <= 0:
                del fields[field]
        df, term_counts = self.df, self.term_counts
        keys, counts = term_counts_of
        if keys:
            # Per block, C-level work only (map, zip, dict.update, numpy): a batch has ~9,000
            # blocks a shard, and a Python loop over them cost about a quarter of an apply.
            # Python runs only for terms that come or go, few once a shard is warm.
            old = np.fromiter(map(df.get, keys, repeat(0)), dtype=np.int64, count=len(keys))
            new = old + sign * np.asarray(counts, dtype=np.int64)
            df.update(zip(keys, new.tolist()))
            for i in np.flatnonzero((old <= 0) & (new > 0)).tolist():  # a term the field did not have
                field = keys[i][0]
                term_counts[field] = term_counts.get(field, 0) + 1
                touched.add(field)
            for i in np.flatnonzero(new <= 0).tolist():  # the field's last document of this term left
                df.pop(keys[i], None)
                if old[i] > 0:
                    field = keys[i][0]
                    left = term_counts.get(field, 0) - 1
                    if left > 0:
                        term_counts[field] = left
                    else:
                        term_counts.pop(field, None)
                    touched.add(field)
        with self._sorted_lock:  # sorted term lists change only where a term came or went
            self._changes += 1
            for field in touched:
                self._sorted.pop(field, None)
        self.docs += sign * documents

    def sorted_terms(self, field: str) -> list[str]:
        terms = self._sorted.get(field)
        if terms is None:
            changes = self._changes
            # list(dict) copies the keys in one C call (an add on another thread cannot
            # change the dict mid-iteration); cached only if no add came meanwhile
            terms = sorted(t for f, t in list(self.df) if f == field)
            with self._sorted_lock:
                if changes == self._changes:
                    self._sorted[field] = terms
        return terms
