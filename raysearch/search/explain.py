"""`explain`: why a hit scored what it did, clause by clause, as Elasticsearch's and
tantivy's explain do. Computed on the shard for the page's hits only, with the same
Bm25Weight the executor scored with (search/bm25.py), so the parts add up to the score."""

from __future__ import annotations

import numpy as np

from raysearch.index.shard_index import ShardIndex
from raysearch.search.bm25 import Bm25Weight
from raysearch.search.plan import PhrasePart, QueryPlan
from raysearch.search.query import MUST_NOT, RANGE


def explain_hits(shard: ShardIndex, plan: QueryPlan, numbers: list[int], scores: list[float]) -> list[dict]:
    """One explanation per document number: {"value", "description", "details": [...]}."""
    return [_explain(shard, plan, number, score) for number, score in zip(numbers, scores)]


def _explain(shard: ShardIndex, plan: QueryPlan, number: int, score: float) -> dict:
    if plan.match_all:
        return {"value": score, "description": "every document (no query): a constant score", "details": []}
    details = []
    for i, clause in enumerate(plan.clauses):
        if clause.kind == RANGE or clause.occur == MUST_NOT:
            continue  # a filter or an exclusion: matches, never scores
        for part in clause.parts:
            avgdl = plan.avgdl[part.field]
            if isinstance(part, PhrasePart):
                freq_dl = _phrase_freq(shard, part, number)
                if freq_dl is None:
                    continue
                freq, dl = freq_dl
                detail = Bm25Weight(part.weight, avgdl).explain(freq, dl, part.boost, part.weight / part.boost
                                                                  if part.boost else 0.0)
                details.append({"clause": i, "occur": clause.occur, "field": part.field,
                                "phrase": " ".join(part.terms), **detail})
                continue
            for j, (term, weight) in enumerate(part.terms):
                tf_dl = _term_freq(shard, part.field, term, number)
                if tf_dl is None:
                    continue
                idf = part.idfs[j] if j < len(part.idfs) else 0.0
                detail = Bm25Weight(weight, avgdl).explain(*tf_dl, part.boost, idf)
                details.append({"clause": i, "occur": clause.occur, "field": part.field, "term": term, **detail})
    return {"value": score, "description": "sum of the clauses' BM25 contributions (weight = boost * idf; "
                                           "value = weight * tf / (tf + k1 * (1 - b + b * dl / avgdl)))",
            "details": details}


def _term_freq(shard: ShardIndex, field: str, term: str, number: int) -> tuple[float, float] | None:
    numbers, tf, dl = shard.posting_arrays(field, term)
    at = int(np.searchsorted(numbers, number))
    if at < len(numbers) and numbers[at] == number:
        return float(tf[at]), float(dl[at])
    return None


def _phrase_freq(shard: ShardIndex, part: PhrasePart, number: int) -> tuple[float, float] | None:
    lists = [(shard.postings(part.field, term), offset) for term, offset in zip(part.terms, part.offsets)]
    if not all(number in postings for postings, _ in lists):
        return None
    starts = None
    dl = 0
    for postings, offset in lists:
        _, dl, positions = postings[number]
        here = {p - offset for p in positions}
        starts = here if starts is None else starts & here
    return (float(len(starts)), float(dl)) if starts else None
