"""Doc values of one shard: a column per typed field, for filters, sorting and facets.

Durably, a document's typed values live in its `T` entry (keys.py), written in
the same RocksDB WriteBatch as its postings, mirrored to MongoDB through the
change log, restored and verified with everything else. In memory they are
columnar, like Lucene's doc values: per field, parallel numpy arrays of
(document number, value) pairs -- one pair per value, so lists work -- with
numbers as int64/float64 and keywords as ordinals into the field's dictionary
(ranked in sorted order on demand). Pure logic (no Ray), rebuilt when the shard
opens. A removed document's pairs stay, masked by the shard's live documents, until
the column has doubled since it was last compacted; then `DocValues.compact` replaces it
with a copy of the live pairs (and of the keywords they still use), so that a shard open
for months of updates holds at most about twice its live values, at an amortised
constant cost per value added.
"""

from __future__ import annotations

import bisect
from array import array

import numpy as np

KEYWORD_KIND, INT_KIND, FLOAT_KIND = "k", "i", "f"
COMPACT_MIN_PAIRS = 4096  # a column smaller than this is never worth copying


def _kind_of(value) -> str:
    if isinstance(value, str):
        return KEYWORD_KIND
    if isinstance(value, float):
        return FLOAT_KIND
    return INT_KIND


class Column:
    """(doc number, value) pairs of one field; keyword values as dictionary ordinals."""

    def __init__(self, kind: str):
        self.kind = kind
        self.docs = array("q")
        self.vals = array("d" if kind == FLOAT_KIND else "q")
        self.terms: dict[str, int] = {}  # keyword -> ordinal (insertion order)
        self.term_list: list[str] = []
        self._arrays: tuple[int, np.ndarray, np.ndarray] | None = None
        self._ranks: tuple[int, np.ndarray, list[str]] | None = None
        self._keys: dict = {}
        self._dense: tuple[int, np.ndarray] | None = None  # (pairs read, at_docs's array)
        self.kept = 0  # pairs when it was made: it is compacted once it holds twice as many
        # whether some document has two values or more (documents are added in increasing
        # number order: a repeat of the last number is a second value)
        self.multi = False
        self._last_doc = -1

    def add(self, docnum: int, values: list) -> None:
        if len(values) > 1 or docnum == self._last_doc:
            self.multi = True
        self._last_doc = docnum
        for value in values:
            if self.kind == KEYWORD_KIND:
                ordinal = self.terms.get(value)
                if ordinal is None:
                    ordinal = self.terms[value] = len(self.term_list)
                    self.term_list.append(value)
                value = ordinal
            elif self.kind == INT_KIND and isinstance(value, float):
                value = int(value)
            elif self.kind == FLOAT_KIND:
                value = float(value)
            self.docs.append(docnum)
            self.vals.append(value)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(doc numbers, values) as numpy copies, cached until the next add."""
        # an add on another thread appends docs before vals: only complete pairs are read
        n = min(len(self.docs), len(self.vals))
        if self._arrays is None or self._arrays[0] != n:
            # slices copy at once under the GIL: no buffer of the growing arrays is ever exported
            # (shards apply on other threads; an append during an export would raise)
            docs, vals = self.docs[:n], self.vals[:n]
            self._arrays = (n, np.frombuffer(docs, dtype=np.int64), np.frombuffer(vals, dtype=np.float64 if
                                                                                  self.kind == FLOAT_KIND else np.int64))
        return self._arrays[1], self._arrays[2]

    def ranks(self) -> tuple[np.ndarray, list[str]]:
        """Keyword columns: (rank in sorted order of each ordinal, the sorted dictionary)."""
        n = len(self.term_list)
        if self._ranks is None or self._ranks[0] != n:
            order = sorted(range(n), key=self.term_list.__getitem__)
            ranks = np.empty(n, dtype=np.int64)
            ranks[order] = np.arange(n, dtype=np.int64)
            self._ranks = (n, ranks, [self.term_list[i] for i in order])
        return self._ranks[1], self._ranks[2]

    def comparable(self) -> tuple[np.ndarray, np.ndarray]:
        """(doc numbers, values as float64 that order like the values): keywords become
        2 * rank, so that a string absent from the dictionary can sit between (rank_key)."""
        docs, vals = self.arrays()
        if self.kind == KEYWORD_KIND:
            ranks, _ = self.ranks()
            return docs, (ranks[vals] * 2).astype(np.float64)
        return docs, vals.astype(np.float64, copy=False)

    def key_of(self, value) -> float:
        """A query value on the scale of comparable(): exact for numbers; for a keyword, 2 * rank
        when present, else an odd number between its neighbours."""
        if self.kind != KEYWORD_KIND:
            return float(value)
        _, ordered = self.ranks()
        i = bisect.bisect_left(ordered, value)
        if i < len(ordered) and ordered[i] == value:
            return 2.0 * i
        return 2.0 * i - 1.0

    def per_doc(self, n: int, take_max: bool) -> np.ndarray:
        """One comparable value per document number < n (min, or max for descending sorts
        of lists); NaN where the document has none."""
        # keyed by what was actually read (an add may be running on another thread): the
        # dictionary's size before the ranks are taken, the pairs as read
        terms = len(self.term_list)
        docs, vals = self.comparable()
        cache_key = (len(docs), terms, n, take_max)
        hit = self._keys.get(take_max)
        if hit is not None and hit[0] == cache_key:
            return hit[1]
        keep = docs < n
        docs, vals = docs[keep], vals[keep]
        out = np.full(n, -np.inf if take_max else np.inf)
        (np.maximum if take_max else np.minimum).at(out, docs, vals)
        out[np.isinf(out)] = np.nan
        self._keys[take_max] = (cache_key, out)
        return out

    def at_docs(self, n: int) -> np.ndarray | None:
        """A column of one value per document (most are: a section, a size, a date): its
        value at every document number < n as float64 (keywords: their ordinal), NaN where
        it has none; None for a column where some document has several. Facets and range
        filters then read the matching documents' values directly, O(matches) or one
        vectorised pass over n, instead of several passes over all pairs. Cached until the
        next add (rebuilt at most once per applied batch); a fresh array each time, so a
        reader never sees one change under it."""
        if self.multi:
            return None
        docs, vals = self.arrays()
        pairs = len(docs)
        hit = self._dense
        if hit is None or hit[0] != pairs or len(hit[1]) < n:
            size = max(n, int(docs[-1]) + 1 if pairs else 0)
            out = np.full(size, np.nan)
            if hit is not None and hit[0] <= pairs:  # the earlier pairs' values are there already
                done = min(len(hit[1]), size)
                out[:done] = hit[1][:done]
                out[docs[hit[0]:]] = vals[hit[0]:]
            else:
                out[docs] = vals
            hit = self._dense = (pairs, out)
        return hit[1][:n]

    def live_pairs(self, live) -> tuple[np.ndarray, np.ndarray]:
        """(doc numbers, values) of the pairs whose document is live (`live`: the shard's
        bytes, 1 at live numbers), in the order added."""
        n = min(len(self.docs), len(self.vals))
        docs = np.frombuffer(self.docs[:n], dtype=np.int64)
        vals = np.frombuffer(self.vals[:n], dtype=np.float64 if self.kind == FLOAT_KIND else np.int64)
        alive = np.frombuffer(live[:len(live)], dtype=np.bool_)
        inside = docs < len(alive)
        keep = np.zeros(n, dtype=bool)
        keep[inside] = alive[docs[inside]]
        return docs[keep], vals[keep]

    def without_dead(self, live) -> "Column":
        """A new column of the live pairs only; keywords no live pair uses are dropped from
        the dictionary (ordinals renumbered, insertion order kept). This column is left as
        it is, for the readers holding it."""
        docs, vals = self.live_pairs(live)
        out = Column(self.kind)
        if self.kind == KEYWORD_KIND:
            used = np.unique(vals)
            out.term_list = [self.term_list[i] for i in used.tolist()]
            out.terms = {term: i for i, term in enumerate(out.term_list)}
            vals = np.searchsorted(used, vals).astype(np.int64)
        out.docs.frombytes(docs.tobytes())
        out.vals.frombytes(vals.tobytes())
        out.kept = len(docs)
        out._added_in_order()
        return out

    def _added_in_order(self) -> None:
        """`multi` and the last number, for pairs put in at once (in the order added)."""
        docs = np.frombuffer(self.docs.tobytes(), dtype=np.int64)  # a copy: the array is never exported
        self.multi = bool(len(docs) > 1 and (np.diff(docs) == 0).any())
        self._last_doc = int(docs[-1]) if len(docs) else -1

    def display(self, comparable: float):
        """A comparable value back as the value it stands for (sort values of hits)."""
        if self.kind == KEYWORD_KIND:
            _, ordered = self.ranks()
            return ordered[int(comparable) // 2]
        if self.kind == INT_KIND:
            return int(comparable)
        return float(comparable)


class DocValues:
    def __init__(self):
        self.columns: dict[str, Column] = {}

    def export(self, live: np.ndarray) -> dict[str, tuple]:
        """The columns as plain bytes for a shard snapshot, without the pairs of documents
        no longer live (a removed version's pairs are dropped here)."""
        out = {}
        for field, column in self.columns.items():
            docs, vals = column.live_pairs(live)
            out[field] = (column.kind, docs.tobytes(), vals.tobytes(), list(column.term_list))
        return out

    @classmethod
    def from_export(cls, exported: dict[str, tuple]) -> "DocValues":
        values = cls()
        for field, (kind, docs, vals, term_list) in exported.items():
            column = values.columns[field] = Column(kind)
            column.docs.frombytes(docs)
            column.vals.frombytes(vals)
            column.term_list = list(term_list)
            column.terms = {term: i for i, term in enumerate(column.term_list)}
            column.kept = len(column.docs)
            column._added_in_order()
        return values

    def compact(self, live) -> int:
        """Replace each column that has doubled since it was made by a copy of its live pairs
        (Column.without_dead); call with no document numbered but not yet live (the apply,
        under its write lock, after the batch's revival). Returns the pairs dropped."""
        dropped = 0
        for field, column in list(self.columns.items()):
            if len(column.docs) >= max(COMPACT_MIN_PAIRS, 2 * column.kept):
                fresh = column.without_dead(live)
                dropped += len(column.docs) - len(fresh.docs)
                self.columns[field] = fresh  # one assignment: readers see the old column or the new
        return dropped

    def add(self, docnum: int, values: dict[str, list]) -> None:
        for field, vals in values.items():
            if not vals:
                continue
            column = self.columns.get(field)
            if column is None:
                column = self.columns[field] = Column(_kind_of(vals[0]))
            column.add(docnum, vals)

    def column(self, field: str) -> Column | None:
        return self.columns.get(field)
