"""A batch's posting blocks, built for the whole batch at once with numpy.

`analyze_document` (analysis/analyzer.py) is the specification: per document, per
field and `_all`, the positions of each term. Building that as Python dicts and lists
costs several dict and list operations per token, and grouping them into one block per
(field, term) per shard as many again: about 0.3 ms per document, the IndexWorkers'
whole budget. Here the per-token work is C: the tokenizer's regex, one dict lookup per
token (`Analyzer.token_ids`, through `map`), and numpy over the batch's token stream:
one stable sort by (shard, field, term) groups postings, and every block is cut from one
buffer laid out in the block encoding (encoding.encode_block). Python work is per value
and per block, not per token. tests/unit/test_batch_postings.py checks the result against
`analyze_document`, block for block.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from raysearch.analysis.analyzer import ALL_FIELD, KEYWORD_TYPE, POSITION_GAP, Analyzer, iter_text_fields
from raysearch.index import keys as K

_U32 = np.dtype("<u4")


def indexed_values(doc: dict, types: dict[str, str] | None) -> list[tuple[str, str, bool]]:
    """(field, text, is a keyword) of each string value of `doc` that is indexed, in order
    (`analyze_document`'s walk: numbers, booleans and dates live in doc values only)."""
    out = []
    for name, text in iter_text_fields(doc):
        ftype = types.get(name) if types else None
        if ftype is None or ftype == KEYWORD_TYPE:
            out.append((name, text, ftype is not None))
    return out


@dataclass
class BatchTokens:
    """A batch's analysed values: segments of one token-id stream, each placed in a field at a
    starting position, and each document's indexed-token count per field. With a derived
    `_all` (no postings of its own: index/all_field.py), `_all` has lengths and no segments."""

    stream: np.ndarray  # int32 term ids: every text value's tokens (-1: stop words), then keyword terms
    field_ids: dict[str, int]  # field -> id, in order of first segment
    seg_row: list[int]  # per segment: its document (row), field id, first position, where its
    seg_field: list[int]  # ids start in the stream and how many
    seg_start: list[int]
    seg_offset: list[int]
    seg_len: list[int]
    lengths: list[dict[str, int]]  # per document: field -> length, in creation order
    text_fields: set[str] = field(default_factory=set)  # fields of text values (what `_all` is made of)


def analyze_batch(values: list[list[tuple[str, str, bool]]], analyzer: Analyzer,
                  derived_all: bool = True) -> BatchTokens:
    """`analyze_document`'s placement of values into fields and `_all`, for a whole batch:
    every text value tokenised by one call (Analyzer.batch_token_ids), then per value only
    its placement (positions relative to each segment's start; stop words take a position).
    `derived_all`: `_all` gets its length but no segments (its postings are the text
    fields' own, merged when read: index/all_field.py)."""
    texts = [text for doc in values for _, text, keyword in doc if not keyword]
    keywords = [text for doc in values for _, text, keyword in doc if keyword]
    ids, starts, stops = analyzer.batch_token_ids(texts)
    keyword_ids = [analyzer.term_id(text) for text in keywords]
    if len(ids):
        indexed = ids >= 0
        counted = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(indexed, out=counted[1:])
        lengths_of = (counted[stops] - counted[starts]).tolist()
        latest = np.maximum.accumulate(np.where(indexed, np.arange(len(ids)), -1))
        last_at = np.where(stops > starts, latest[np.maximum(stops - 1, 0)], -1)
        lasts = np.where(last_at >= starts, last_at - starts, -1).tolist()
    else:
        lengths_of, lasts = [0] * len(texts), [-1] * len(texts)
    starts_of, sizes = starts.tolist(), (stops - starts).tolist()
    keyword_base = len(ids)
    field_ids: dict[str, int] = {}
    seg_row, seg_field, seg_start, seg_offset, seg_len = [], [], [], [], []
    doc_lengths = []
    text_fields: set[str] = set()
    text_targets = (ALL_FIELD,) if derived_all else ()  # fields counted without segments
    t = k = 0
    for row, doc in enumerate(values):
        next_pos: dict[str, int] = {}
        lengths: dict[str, int] = {}
        for name, _, keyword in doc:
            if keyword:
                length, last, offset, size, targets = 1, 0, keyword_base + k, 1, (name,)
                k += 1
            else:
                length, last, offset, size, targets = lengths_of[t], lasts[t], starts_of[t], sizes[t], (name, ALL_FIELD)
                text_fields.add(name)
                t += 1
            for fname in targets:
                if fname in text_targets:
                    lengths[fname] = lengths.get(fname, 0) + length
                    continue
                start = next_pos.get(fname, 0)
                lengths[fname] = lengths.get(fname, 0) + length
                if length:
                    fid = field_ids.get(fname)
                    if fid is None:
                        fid = field_ids[fname] = len(field_ids)
                    seg_row.append(row)
                    seg_field.append(fid)
                    seg_start.append(start)
                    seg_offset.append(offset)
                    seg_len.append(size)
                next_pos[fname] = max(start, start + last + 1) + POSITION_GAP
        doc_lengths.append(lengths)
    stream = np.concatenate((ids, np.asarray(keyword_ids, dtype=np.int32)))
    return BatchTokens(stream, field_ids, seg_row, seg_field, seg_start, seg_offset, seg_len, doc_lengths,
                       text_fields if derived_all else set())


@dataclass
class BatchBlocks:
    """Per shard: the (field, term) prefixes and encoded blocks, and each document's
    indexed fields as [[field, length, sorted terms], ...] (the T entry's JSON part)."""

    prefixes: dict[int, list[bytes]]
    blocks: dict[int, list[bytes]]
    terms: dict[int, list[tuple[str, str]]]  # (field, term) of each prefix
    indexed: list[list]  # per document, in the order given
    # With a derived `_all`, per shard: its terms and how many of the shard's documents hold
    # each (what `_all` blocks' sizes were: the document-frequency increments)
    all_terms: dict[int, list[str]] = field(default_factory=dict)
    all_counts: dict[int, list[int]] = field(default_factory=dict)


def build_blocks(tokens: BatchTokens, shard_of: list[int], analyzer: Analyzer) -> BatchBlocks:
    """Posting blocks of documents numbered by their rank within their shard (the order given)."""
    field_ids = tokens.field_ids
    field_names = list(field_ids)
    doc_lengths = tokens.lengths
    prefixes: dict[int, list[bytes]] = {}
    blocks: dict[int, list[bytes]] = {}
    block_terms: dict[int, list[tuple[str, str]]] = {}
    indexed: list[list] = [[] for _ in doc_lengths]
    if not tokens.seg_len:
        for row, lengths in enumerate(doc_lengths):
            indexed[row] = [[f, n, _derived_terms(f, tokens, [])] for f, n in lengths.items() if n > 0]
        return BatchBlocks(prefixes, blocks, block_terms, indexed)

    # Expand segments into one entry per token: row, field, term, position.
    # int32 per token: a batch holds far fewer than 2**31 tokens, and halving these arrays
    # halves the worker's peak heap (memory malloc keeps after a batch).
    lens = np.asarray(tokens.seg_len, dtype=np.int32)
    begins = np.cumsum(lens, dtype=np.int32) - lens
    total_tokens = int(begins[-1] + lens[-1])
    order_in = np.arange(total_tokens, dtype=np.int32)
    term = tokens.stream[np.repeat(np.asarray(tokens.seg_offset, dtype=np.int32) - begins, lens) + order_in]
    pos = order_in - np.repeat(begins - np.asarray(tokens.seg_start, dtype=np.int32), lens)
    row = np.repeat(np.asarray(tokens.seg_row, dtype=np.int32), lens)
    fid = np.repeat(np.asarray(tokens.seg_field, dtype=np.int32), lens)
    keep = term >= 0  # stop words hold a position but index nothing
    term, pos, row, fid = term[keep], pos[keep], row[keep], fid[keep]

    shard_arr = np.asarray(shard_of, dtype=np.int32)
    local_of_row = np.zeros(len(doc_lengths), dtype=np.int32)
    for n in np.unique(shard_arr):
        members = np.flatnonzero(shard_arr == n)
        local_of_row[members] = np.arange(len(members))
    shard = shard_arr[row]

    # Field lengths per (row, field), looked up by a sorted key.
    length_keys, length_vals = [], []
    for r, lengths in enumerate(doc_lengths):
        for fname, n in lengths.items():
            if n > 0 and fname in field_ids:  # (a derived `_all` has a length, no postings)
                length_keys.append(r * len(field_names) + field_ids[fname])
                length_vals.append(n)
    length_keys_arr = np.asarray(length_keys, dtype=np.int64)
    key_order = np.argsort(length_keys_arr)
    length_keys_arr = length_keys_arr[key_order]
    length_vals_arr = np.asarray(length_vals, dtype=np.int64)[key_order]

    # Stable: within a (shard, field, term) group entries keep stream order, which is
    # (row, position) order: rows come in order, and a row's values in position order.
    order = np.lexsort((term, fid, shard))
    term, pos, row, fid, shard = term[order], pos[order], row[order], fid[order], shard[order]
    total = len(term)
    new_group = np.ones(total, dtype=bool)
    new_group[1:] = (term[1:] != term[:-1]) | (fid[1:] != fid[:-1]) | (shard[1:] != shard[:-1])
    new_posting = new_group.copy()
    new_posting[1:] |= row[1:] != row[:-1]
    g_start = np.flatnonzero(new_group)  # entry index where each group starts
    p_start = np.flatnonzero(new_posting)  # entry index where each posting starts
    n_groups, n_postings = len(g_start), len(p_start)
    tf = np.diff(np.append(p_start, total))
    p_row, p_fid = row[p_start], fid[p_start]
    p_len = length_vals_arr[np.searchsorted(length_keys_arr, p_row.astype(np.int64) * len(field_names) + p_fid)]
    posting_group = np.cumsum(new_posting & new_group)[p_start] - 1  # group of each posting
    g_postings = np.bincount(posting_group, minlength=n_groups)
    g_positions = np.diff(np.append(g_start, total))

    # One buffer in the block encoding: per group n, docs, tfs, lengths, positions.
    g_size = 1 + 3 * g_postings + g_positions
    g_off = np.cumsum(g_size) - g_size
    buf = np.empty(int(g_size.sum()), dtype=_U32)
    buf[g_off] = g_postings
    k = np.arange(n_postings) - (np.cumsum(g_postings) - g_postings)[posting_group]  # index within group
    base = g_off[posting_group] + 1 + k
    n_of = g_postings[posting_group]
    buf[base] = local_of_row[p_row]
    buf[base + n_of] = tf
    buf[base + 2 * n_of] = p_len
    entry_group = np.cumsum(new_group) - 1
    m = np.arange(total) - g_start[entry_group]  # index of a position within its group
    buf[g_off[entry_group] + 1 + 3 * g_postings[entry_group] + m] = pos
    raw = buf.tobytes()
    ends = (g_off + g_size) * 4

    vocab = analyzer.vocabulary
    field_bytes = [K.POSTING + f.encode() + K.SEP for f in field_names]
    # Groups are sorted by shard first: each shard's blocks are one run of them, cut by list
    # comprehensions (a batch has ~20 blocks a document: per-block Python is what costs here).
    g_shard = shard[g_start]
    g_fid, g_term = fid[g_start].tolist(), term[g_start].tolist()
    g_words = [vocab[t] for t in g_term]
    g_begin, g_end = (g_off * 4).tolist(), ends.tolist()
    runs = np.flatnonzero(np.diff(g_shard)) + 1
    for lo, hi in zip([0, *runs.tolist()], [*runs.tolist(), n_groups]):
        n = int(g_shard[lo])
        fids, words = g_fid[lo:hi], g_words[lo:hi]
        prefixes[n] = [field_bytes[f] + w.encode() + K.SEP for f, w in zip(fids, words)]
        block_terms[n] = [(field_names[f], w) for f, w in zip(fids, words)]
        blocks[n] = [raw[a:b] for a, b in zip(g_begin[lo:hi], g_end[lo:hi])]

    # Each document's distinct terms per field, for its T entry, as sorted strings: the
    # batch's distinct terms are ranked once, then postings sorted by (row, field, rank).
    p_term = term[p_start]
    distinct = np.unique(p_term)
    names = [vocab[t] for t in distinct.tolist()]
    by_name = sorted(range(len(names)), key=names.__getitem__)
    rank_of = np.empty(len(names), dtype=np.int64)
    rank_of[by_name] = np.arange(len(names))
    names_by_rank = [names[i] for i in by_name]
    p_rank = rank_of[np.searchsorted(distinct, p_term)]
    by_doc = np.lexsort((p_rank, p_fid, p_row))
    flat = [names_by_rank[r] for r in p_rank[by_doc].tolist()]
    d_row, d_fid = p_row[by_doc], p_fid[by_doc]
    cut = np.flatnonzero(np.diff(d_row) | np.diff(d_fid)) + 1
    starts = [0, *cut.tolist()]
    stops = [*cut.tolist(), len(flat)]
    terms_of = {(r, f): flat[a:b] for r, f, a, b in zip(d_row[starts].tolist(), d_fid[starts].tolist(), starts, stops)}
    for r, lengths in enumerate(doc_lengths):
        indexed[r] = [[f, n, _derived_terms(f, tokens, terms_of.get((r, field_ids.get(f)), []))]
                      for f, n in lengths.items() if n > 0]
    all_terms, all_counts = {}, {}
    if tokens.text_fields:
        # `_all`'s document frequencies per shard: distinct (shard, term, document) among the
        # text fields' postings, counted per (shard, term). Packed into one int64 key:
        # shard (< 2**10), term id (< 2**31), row (< 2**21: a batch holds at most 5,000).
        text_fid = np.zeros(len(field_names), dtype=bool)
        text_fid[[field_ids[f] for f in tokens.text_fields if f in field_ids]] = True
        sel = text_fid[p_fid]
        keys = ((shard[p_start][sel].astype(np.int64) << 52) | (p_term[sel].astype(np.int64) << 21)
                | p_row[sel].astype(np.int64))
        held = np.unique(keys) >> 21  # sorted: by shard, then term (one entry per document holding it)
        if len(held):
            starts = np.flatnonzero(np.concatenate(([True], held[1:] != held[:-1])))
            pairs = held[starts]
            counts = np.diff(np.append(starts, len(held))).tolist()
            pair_shard, pair_term = pairs >> 31, (pairs & ((1 << 31) - 1)).tolist()
            cuts = np.flatnonzero(np.diff(pair_shard)) + 1
            for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), len(pairs)]):
                n = int(pair_shard[lo])
                all_terms[n] = [vocab[t] for t in pair_term[lo:hi]]
                all_counts[n] = counts[lo:hi]
    return BatchBlocks(prefixes, blocks, block_terms, indexed, all_terms, all_counts)


def _derived_terms(field_name: str, tokens: BatchTokens, terms: list):
    """A T entry's terms of one field: None for a derived `_all` (the union of the text
    fields' terms, index/all_field.py), else `terms`."""
    return None if tokens.text_fields and field_name == ALL_FIELD else terms
