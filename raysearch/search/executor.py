"""Shard-side execution of a plan: score the shard's documents, keep the top k."""

from __future__ import annotations

import heapq

from raysearch.index.encoding import decode_posting, posting_tf_dl
from raysearch.index.shard_index import ShardIndex
from raysearch.search.bm25 import B, K1
from raysearch.search.query import MUST, MUST_NOT, PHRASE


def execute(shard: ShardIndex, plan: dict, k: int) -> tuple[int, list[tuple[float, str]]]:
    """(number of matching documents, top k as (score, id) by score desc, id asc)."""
    avgdl = plan["avgdl"]
    must_sets: list[set[str]] = []
    excluded: set[str] = set()
    scores: dict[str, float] = {}
    has_must = any(c["occur"] == MUST for c in plan["clauses"])
    for clause in plan["clauses"]:
        matched = _clause_scores(shard, clause, avgdl)
        if clause["occur"] == MUST_NOT:
            excluded.update(matched)
            continue
        if clause["occur"] == MUST:
            must_sets.append(set(matched))
        for doc_id, s in matched.items():
            scores[doc_id] = scores.get(doc_id, 0.0) + s
    if has_must:
        keep = set.intersection(*must_sets) if must_sets else set()
        candidates = keep - excluded
    else:
        candidates = scores.keys() - excluded
    top = heapq.nsmallest(k, ((-scores[d], d) for d in candidates)) if k > 0 else []
    return len(candidates), [(-neg, d) for neg, d in top]


def _clause_scores(shard: ShardIndex, clause: dict, avgdl: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in clause["parts"]:
        field = part[0]
        norm_base = K1 * (1.0 - B)
        norm_slope = K1 * B / avgdl[field]
        if clause["kind"] == PHRASE:
            _, terms, offsets, weight = part
            for doc_id, freq, dl in _phrase_matches(shard, field, terms, offsets):
                out[doc_id] = out.get(doc_id, 0.0) + weight * freq / (freq + norm_base + norm_slope * dl)
        else:
            for term, weight in part[1]:
                for doc_id, value in shard.postings(field, term):
                    tf, dl = posting_tf_dl(value)
                    out[doc_id] = out.get(doc_id, 0.0) + weight * tf / (tf + norm_base + norm_slope * dl)
    return out


def _phrase_matches(shard: ShardIndex, field: str, terms: list[str], offsets: list[int]):
    """(doc id, phrase frequency, field length) for docs where the terms occur at the offsets."""
    # Start from the rarest term to keep the candidate set small.
    lists = []
    for term, offset in zip(terms, offsets):
        lists.append((dict(shard.postings(field, term)), offset))
    lists.sort(key=lambda item: len(item[0]))
    base, base_offset = lists[0]
    for doc_id, value in base.items():
        if not all(doc_id in other for other, _ in lists[1:]):
            continue
        tf, dl, positions = decode_posting(value)
        starts = {p - base_offset for p in positions}
        for other, offset in lists[1:]:
            starts &= {p - offset for p in decode_posting(other[doc_id])[2]}
            if not starts:
                break
        if starts:
            yield doc_id, len(starts), dl
