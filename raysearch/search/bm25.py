"""Lucene's BM25 (Lucene >= 8: no (k1 + 1) factor), with global statistics: the one place
the formula is written. The executor (every path: exhaustive, pruned, rescored), the
pruning bounds and `explain` all score through `Bm25Weight`.

score(q, d) = sum_t boost * idf(t) * tf / (tf + k1 * (1 - b + b * dl / avgdl))
idf(t)      = ln(1 + (N - n + 0.5) / (n + 0.5))
N is the number of documents having the field (Lucene's docCount), n the
term's document frequency in that field, avgdl the field's mean length.

(The brute-force oracle of the tests, tests/oracle.py, writes the formula again on
purpose: an oracle that shared this code could not catch a mistake in it.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

K1 = 1.2
B = 0.75


def idf(doc_count: int, doc_freq: int) -> float:
    return math.log(1.0 + (doc_count - doc_freq + 0.5) / (doc_freq + 0.5))


@dataclass(frozen=True)
class Bm25Weight:
    """One term (or phrase) in one field, as tantivy's Bm25Weight: `weight` is boost * idf
    (a phrase: boost * the sum of its terms' idf); the length normalisation
    k1 * (1 - b + b * dl / avgdl) is kept as base + slope * dl, one multiply-add per posting."""

    weight: float
    avgdl: float
    k1: float = K1
    b: float = B

    @property
    def norm_base(self) -> float:
        return self.k1 * (1.0 - self.b)

    @property
    def norm_slope(self) -> float:
        return self.k1 * self.b / self.avgdl

    def scorer(self):
        """A function (tf, dl) -> contribution over numpy arrays or scalars, with the
        normalisation computed once. Every path of the executor adds these same floats."""
        weight, base, slope = self.weight, self.norm_base, self.norm_slope

        def score(tf, dl):
            return weight * tf / (tf + base + slope * dl)

        return score

    def score(self, tf, dl):
        return self.scorer()(tf, dl)

    def max_score(self, max_tf: float, min_dl: float) -> float:
        """The most one posting can add: the contribution grows with tf and falls with dl."""
        return float(self.score(max_tf, min_dl))

    def explain(self, tf: float, dl: float, boost: float, idf_value: float) -> dict:
        """The contribution of one posting, with what it is made of (Elasticsearch's `explain`)."""
        return {"value": float(self.score(tf, dl)), "boost": boost, "idf": idf_value, "tf": float(tf),
                "field_length": float(dl), "avg_field_length": self.avgdl, "k1": self.k1, "b": self.b}


def term_score(weight: float, tf: float, dl: float, avgdl: float, k1: float = K1, b: float = B) -> float:
    """`weight` is boost * idf (the same arithmetic as Bm25Weight.score)."""
    return float(Bm25Weight(weight, avgdl, k1, b).score(tf, dl))
