"""`_all`, the default search field, derived from the text fields' own postings.

`_all` holds every text value of a document (`analyze_document`). Stored, it was a second
copy of every text posting: 45 % of a Debian document's posting blocks and 36 % of the
bytes a shard writes, logs and mirrors (benchmarks/README.md, "A derived _all"). An index
with `all_field: "derived"` (every index created since) writes none of it:

- its statistics are kept as before: each document's `_all` length and the document
  frequency of each `_all` term (how many documents hold the term in any text field),
  counted by the worker per batch (batch_postings.py); a T entry keeps `_all`'s length and
  `None` for its terms, which are the union of the document's text fields' terms
  (`expand_terms`, when a removal or a scan counts them out or in);
- its postings are merged from the text fields' lists when read (`merge_arrays`,
  `merge_postings`): a document's tf is the sum of its tfs in those fields, and its length
  the `_all` length kept per document number. BM25 scores are those of the stored `_all`.
  A phrase matches within one field, as it did in the stored `_all`, whose values were
  POSITION_GAP apart: each field's positions are moved to a range of their own.

Which fields are text is recorded per shard (F keys, index/keys.py: mirrored and restored
like the rest): a keyword field's exact values are not words of `_all`. Pure logic (numpy).
"""

from __future__ import annotations

import numpy as np

# Positions of the i-th text field (in sorted order) are moved by i * FIELD_SPAN when merged:
# a field's positions stay far below it (POSITION_GAP between values, a document is <= 1 MB).
FIELD_SPAN = 1 << 32


def expand_terms(indexed: list, sources: set[str]) -> list:
    """A T entry's fields with a derived `_all`'s terms (None) made explicit: the sorted union
    of the document's terms in its text fields (`sources`)."""
    if not any(terms is None for _, _, terms in indexed):
        return indexed
    union = sorted({t for name, _, terms in indexed if name in sources and terms for t in terms})
    return [[name, length, union if terms is None else terms] for name, length, terms in indexed]


def merge_arrays(parts: list[tuple[np.ndarray, np.ndarray]], all_lengths: np.ndarray) -> tuple:
    """(doc numbers, tfs, `_all` lengths) of `_all` from the text fields' (doc numbers, tfs):
    numbers ascending, each once, with its tfs summed."""
    parts = [(docs, tfs) for docs, tfs in parts if len(docs)]
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0)
    if len(parts) == 1:
        docs, tfs = parts[0]
    else:
        docs = np.concatenate([d for d, _ in parts])
        tfs = np.concatenate([t for _, t in parts])
        order = np.argsort(docs, kind="stable")
        docs, tfs = docs[order], tfs[order]
        first = np.ones(len(docs), dtype=bool)
        first[1:] = docs[1:] != docs[:-1]
        starts = np.flatnonzero(first)
        if len(starts) < len(docs):
            docs, tfs = docs[starts], np.add.reduceat(tfs, starts)
    return docs, tfs, lengths_of(all_lengths, docs)


def lengths_of(all_lengths: np.ndarray, docs: np.ndarray) -> np.ndarray:
    """`_all` lengths of these document numbers (0 past the array: numbers being added)."""
    if len(docs) and docs[-1] >= len(all_lengths):
        out = np.zeros(len(docs))
        inside = docs < len(all_lengths)
        out[inside] = all_lengths[docs[inside]]
        return out
    return all_lengths[docs].astype(np.float64)


def length_of(all_lengths: np.ndarray, docnum: int) -> int:
    """One document number's `_all` length (0 past the array: a number being added)."""
    return int(all_lengths[docnum]) if docnum < len(all_lengths) else 0


def merge_postings(parts: list[dict], all_lengths: np.ndarray) -> dict:
    """doc number -> (tf, `_all` length, positions) from the text fields' postings dicts
    (in the sources' sorted order), each field's positions in a range of their own."""
    out: dict[int, tuple[int, int, list[int]]] = {}
    for i, part in enumerate(parts):
        shift = i * FIELD_SPAN
        for docnum, (tf, _, positions) in part.items():
            moved = [p + shift for p in positions] if shift else list(positions)
            held = out.get(docnum)
            if held is None:
                out[docnum] = (tf, length_of(all_lengths, docnum), moved)
            else:
                out[docnum] = (held[0] + tf, held[1], held[2] + moved)
    return out
