"""Brute-force BM25 oracle, written independently of the engine's search code:
it scans every document for every query. Same analyzer, same formula (docs/design.md)."""

from __future__ import annotations

import math
import random
import re
from collections import Counter

from raysearch.analysis.analyzer import ALL_FIELD, Analyzer, analyze_document

K1, B = 1.2, 0.75


class Oracle:
    def __init__(self, docs: list[dict], analyzer: Analyzer, field: str = ALL_FIELD, types: dict | None = None):
        latest = {d["id"]: d for d in docs}  # a later record replaces an earlier one
        self.tfs: dict[str, Counter] = {}
        self.lengths: dict[str, int] = {}
        for doc_id, doc in latest.items():
            for f in analyze_document(doc, analyzer, types):
                if f.name == field:
                    self.tfs[doc_id] = Counter({t: len(p) for t, p in f.postings.items()})
                    self.lengths[doc_id] = f.length
        self.n = len(self.tfs)
        self.avgdl = sum(self.lengths.values()) / self.n
        self.df = Counter()
        for tf in self.tfs.values():
            self.df.update(tf.keys())
        self.analyzer = analyzer

    def scores(self, query: str) -> dict[str, float]:
        terms = self.analyzer.terms(query)  # a repeated word counts once per occurrence
        out = {}
        for doc_id, tf in self.tfs.items():
            if not any(t in tf for t in terms):
                continue
            dl, s = self.lengths[doc_id], 0.0
            for t in terms:
                f = tf.get(t, 0)
                if f:
                    idf = math.log(1 + (self.n - self.df[t] + 0.5) / (self.df[t] + 0.5))
                    s += idf * f / (f + K1 * (1 - B + B * dl / self.avgdl))
            out[doc_id] = s
        return out

    def top(self, query: str, k: int) -> tuple[int, list[tuple[str, float]]]:
        scores = self.scores(query)
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        return len(scores), ranked[:k]


def assert_same_ranking(hits: list[dict], oracle_scores: dict[str, float], oracle_top: list[tuple[str, float]],
                        rel: float = 1e-6) -> None:
    """Engine hits equal the oracle's top-k, up to float ties: scores rank by rank within
    `rel`, every returned id scored as the oracle scores it, and the same ids unless tied."""
    assert len(hits) == len(oracle_top), (len(hits), len(oracle_top))
    for hit, (oid, oscore) in zip(hits, oracle_top):
        assert math.isclose(hit["score"], oscore, rel_tol=rel), (hit["id"], hit["score"], oid, oscore)
        assert hit["id"] in oracle_scores, f"{hit['id']} does not match the query at all"
        assert math.isclose(hit["score"], oracle_scores[hit["id"]], rel_tol=rel), hit
        if hit["id"] != oid:  # allowed only between (near-)equal scores
            assert math.isclose(oracle_scores[hit["id"]], oscore, rel_tol=rel), (hit, oid, oscore)


_QUERY_WORD = re.compile(r"[A-Za-z]{3,}")


def draw_queries(docs: list[dict], count: int, seed: int = 7) -> list[str]:
    """1-3 words drawn from random documents, fixed seed."""
    rng = random.Random(seed)
    queries = []
    while len(queries) < count:
        doc = rng.choice(docs)
        words = _QUERY_WORD.findall(doc.get("title", "") + " " + doc.get("body", ""))
        if words:
            queries.append(" ".join(rng.choice(words) for _ in range(rng.randint(1, 3))))
    return queries
