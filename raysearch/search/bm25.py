"""Lucene's BM25 (Lucene >= 8: no (k1 + 1) factor), with global statistics.

score(q, d) = sum_t boost * idf(t) * tf / (tf + k1 * (1 - b + b * dl / avgdl))
idf(t)      = ln(1 + (N - n + 0.5) / (n + 0.5))
N is the number of documents having the field (Lucene's docCount), n the
term's document frequency in that field, avgdl the field's mean length.
"""

from __future__ import annotations

import math

K1 = 1.2
B = 0.75


def idf(doc_count: int, doc_freq: int) -> float:
    return math.log(1.0 + (doc_count - doc_freq + 0.5) / (doc_freq + 0.5))


def term_score(weight: float, tf: float, dl: float, avgdl: float, k1: float = K1, b: float = B) -> float:
    """`weight` is boost * idf."""
    return weight * tf / (tf + k1 * (1.0 - b + b * dl / avgdl))
