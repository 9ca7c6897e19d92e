"""Shard-side execution of a plan: score the shard's documents, keep the top k.

Scores are accumulated in dense numpy arrays indexed by shard-local document
numbers: one vectorised BM25 expression per (field, term) posting list. Each
document's score is summed in clause order, the same on any number of shards.
"""

from __future__ import annotations

import heapq

import numpy as np

from raysearch.index.shard_index import ShardIndex
from raysearch.search.bm25 import B, K1
from raysearch.search.query import MUST, MUST_NOT, PHRASE


def execute(shard: ShardIndex, plan: dict, k: int) -> tuple[int, list[tuple[float, str]]]:
    """(number of matching documents, top k as (score, id) by score desc, id asc)."""
    doc_ids = shard.stats.doc_ids
    n = len(doc_ids)
    avgdl = plan["avgdl"]
    scores = np.zeros(n)
    should = np.zeros(n, dtype=bool)
    must_hits = np.zeros(n, dtype=np.int32)
    excluded = np.zeros(n, dtype=bool)
    musts = 0
    for clause in plan["clauses"]:
        matched, contrib = _clause_scores(shard, clause, avgdl, n)
        if clause["occur"] == MUST_NOT:
            excluded |= matched
            continue
        scores += contrib
        if clause["occur"] == MUST:
            musts += 1
            must_hits += matched
        else:
            should |= matched
    candidates = (must_hits == musts) if musts else should
    if musts:
        candidates &= must_hits > 0
    candidates &= ~excluded
    numbers = np.flatnonzero(candidates)
    total = len(numbers)
    if k <= 0 or total == 0:
        return total, []
    cand_scores = scores[numbers]
    if total > k:
        # keep everything tied with the k-th score, then break ties by id
        kth = np.partition(cand_scores, total - k)[total - k]
        keep = cand_scores >= kth
        numbers, cand_scores = numbers[keep], cand_scores[keep]
    top = heapq.nsmallest(k, ((-float(s), doc_ids[i]) for i, s in zip(numbers.tolist(), cand_scores)))
    return total, [(-neg, d) for neg, d in top]


def _clause_scores(shard: ShardIndex, clause: dict, avgdl: dict[str, float], n: int):
    """(matched mask, score contribution) of one clause over the shard's documents."""
    matched = np.zeros(n, dtype=bool)
    contrib = np.zeros(n)
    for part in clause["parts"]:
        field = part[0]
        norm_base = K1 * (1.0 - B)
        norm_slope = K1 * B / avgdl[field]
        if clause["kind"] == PHRASE:
            _, terms, offsets, weight = part
            for i, freq, dl in _phrase_matches(shard, field, terms, offsets):
                if i >= n:  # indexed after this query started
                    continue
                matched[i] = True
                contrib[i] += weight * freq / (freq + norm_base + norm_slope * dl)
        else:
            for term, weight in part[1]:
                numbers, tf, dl = shard.posting_arrays(field, term)
                if len(numbers) and numbers.max() >= n:  # documents indexed after this query started
                    keep = numbers < n
                    numbers, tf, dl = numbers[keep], tf[keep], dl[keep]
                if len(numbers):
                    matched[numbers] = True
                    contrib[numbers] += weight * tf / (tf + norm_base + norm_slope * dl)
    return matched, contrib


def _phrase_matches(shard: ShardIndex, field: str, terms: list[str], offsets: list[int]):
    """(doc number, phrase frequency, field length) for docs where the terms occur at the offsets."""
    # Start from the rarest term to keep the candidate set small.
    lists = sorted(((shard.postings(field, term), offset) for term, offset in zip(terms, offsets)),
                   key=lambda item: len(item[0]))
    base, base_offset = lists[0]
    for docnum, (_, dl, positions) in base.items():
        if not all(docnum in other for other, _ in lists[1:]):
            continue
        starts = {p - base_offset for p in positions}
        for other, offset in lists[1:]:
            starts &= {p - offset for p in other[docnum][2]}
            if not starts:
                break
        if starts:
            yield docnum, len(starts), dl
