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


@dataclass
class DocTokens:
    """One document's analysed values: segments of the batch's token-id stream, each
    placed in a field at a starting position, and each field's indexed-token count."""

    lengths: dict[str, int] = field(default_factory=dict)  # field -> length, in creation order
    segments: list[tuple[str, int, list[int]]] = field(default_factory=list)  # (field, start, ids)


def analyze_tokens(doc: dict, analyzer: Analyzer, types: dict[str, str] | None) -> DocTokens:
    """`analyze_document`'s placement of values into fields and `_all`, as term-id segments
    (positions relative to each segment's start; -1 ids are stop words, which take a position)."""
    out = DocTokens()
    next_pos: dict[str, int] = {}
    lengths = out.lengths
    types = types or {}
    for name, text in iter_text_fields(doc):
        ftype = types.get(name)
        if ftype is not None and ftype != KEYWORD_TYPE:
            continue  # numbers, booleans and dates live in doc values only
        if ftype == KEYWORD_TYPE:
            ids, length, last, targets = [analyzer.term_id(text)], 1, 0, (name,)
        else:
            ids = analyzer.token_ids(text)
            length = len(ids) - ids.count(-1)
            last = len(ids) - 1
            while last >= 0 and ids[last] < 0:
                last -= 1
            targets = (name, ALL_FIELD)
        for fname in targets:
            start = next_pos.get(fname, 0)
            lengths[fname] = lengths.get(fname, 0) + length
            if length:
                out.segments.append((fname, start, ids))
            next_pos[fname] = max(start, start + last + 1) + POSITION_GAP
    return out


@dataclass
class BatchBlocks:
    """Per shard: the (field, term) prefixes and encoded blocks, and each document's
    indexed fields as [[field, length, sorted terms], ...] (the T entry's JSON part)."""

    prefixes: dict[int, list[bytes]]
    blocks: dict[int, list[bytes]]
    indexed: list[list]  # per document, in the order given


def build_blocks(docs: list[DocTokens], shard_of: list[int], analyzer: Analyzer) -> BatchBlocks:
    """Posting blocks of documents numbered by their rank within their shard (the order given)."""
    field_ids: dict[str, int] = {}
    seg_row, seg_field, seg_start, seg_len, stream = [], [], [], [], []
    for row, doc in enumerate(docs):
        for fname, start, ids in doc.segments:
            fid = field_ids.get(fname)
            if fid is None:
                fid = field_ids[fname] = len(field_ids)
            seg_row.append(row)
            seg_field.append(fid)
            seg_start.append(start)
            seg_len.append(len(ids))
            stream.extend(ids)
    field_names = list(field_ids)
    prefixes: dict[int, list[bytes]] = {}
    blocks: dict[int, list[bytes]] = {}
    indexed: list[list] = [[] for _ in docs]
    if not stream:
        for row, doc in enumerate(docs):
            indexed[row] = [[f, n, []] for f, n in doc.lengths.items() if n > 0]
        return BatchBlocks(prefixes, blocks, indexed)

    # Expand segments into one entry per token: row, field, term, position.
    # int32 per token: a batch holds far fewer than 2**31 tokens, and halving these arrays
    # halves the worker's peak heap (memory malloc keeps after a batch).
    lens = np.asarray(seg_len, dtype=np.int32)
    begins = np.cumsum(lens, dtype=np.int32) - lens
    term = np.asarray(stream, dtype=np.int32)
    pos = np.arange(len(term), dtype=np.int32) - np.repeat(begins - np.asarray(seg_start, dtype=np.int32), lens)
    row = np.repeat(np.asarray(seg_row, dtype=np.int32), lens)
    fid = np.repeat(np.asarray(seg_field, dtype=np.int32), lens)
    keep = term >= 0  # stop words hold a position but index nothing
    term, pos, row, fid = term[keep], pos[keep], row[keep], fid[keep]

    shard_arr = np.asarray(shard_of, dtype=np.int32)
    local_of_row = np.zeros(len(docs), dtype=np.int32)
    for n in np.unique(shard_arr):
        members = np.flatnonzero(shard_arr == n)
        local_of_row[members] = np.arange(len(members))
    shard = shard_arr[row]

    # Field lengths per (row, field), looked up by a sorted key.
    length_keys, length_vals = [], []
    for r, doc in enumerate(docs):
        for fname, n in doc.lengths.items():
            if n > 0:
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
    g_shard, g_fid, g_term = shard[g_start].tolist(), fid[g_start].tolist(), term[g_start].tolist()
    for g, (a, b) in enumerate(zip((g_off * 4).tolist(), ends.tolist())):
        n = g_shard[g]
        if n not in prefixes:
            prefixes[n], blocks[n] = [], []
        prefixes[n].append(field_bytes[g_fid[g]] + vocab[g_term[g]].encode() + K.SEP)
        blocks[n].append(raw[a:b])

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
    for r, doc in enumerate(docs):
        indexed[r] = [[f, n, terms_of.get((r, field_ids[f]), [])] for f, n in doc.lengths.items() if n > 0]
    return BatchBlocks(prefixes, blocks, indexed)
