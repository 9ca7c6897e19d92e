"""Facets (pure): exact counts over every matching document, from doc values with numpy.

    {"name": {"terms": {"field": f, "size": 10}}}      -> {"buckets": [{"key", "count"}], "other": n}
    {"name": {"stats": {"field": f}}}                  -> {"count", "min", "max", "sum", "avg"}
    {"name": {"histogram": {"field": f, "interval": x}}} -> {"buckets": [{"key", "count"}]}

Each shard returns every bucket it has (so the merge is exact, not an approximation
of the top `size`); the ingress merges, orders (count desc, key asc) and cuts.
A document counts once per bucket, however many of its values fall into it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from raysearch import schema
from raysearch.errors import InvalidRequest
from raysearch.search.filters import field_type

MAX_FACETS = 32
MAX_TERMS_SIZE = 10_000
MAX_HISTOGRAM_BUCKETS = 10_000
BINCOUNT_RANGE = 1 << 16  # whole values spread over fewer than this are counted, not sorted


def parse_facets(spec: Any, types: dict[str, str]) -> dict[str, list]:
    """name -> ["terms", field, size] | ["stats", field] | ["histogram", field, interval]."""
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise InvalidRequest("facets must be an object: name -> {terms|stats|histogram: {...}}")
    if len(spec) > MAX_FACETS:
        raise InvalidRequest(f"at most {MAX_FACETS} facets per search")
    out = {}
    for name, body in spec.items():
        if not isinstance(body, dict) or len(body) != 1:
            raise InvalidRequest(f"facet {name!r}: use exactly one of terms, stats, histogram")
        (kind, args), = body.items()
        if kind not in ("terms", "stats", "histogram"):
            raise InvalidRequest(f"facet {name!r}: unknown facet type {kind!r}; use terms, stats or histogram")
        if not isinstance(args, dict):
            raise InvalidRequest(f"facet {name!r}: {kind} takes an object with a 'field'")
        allowed = {"terms": {"field", "size"}, "stats": {"field"}, "histogram": {"field", "interval"}}[kind]
        unknown = set(args) - allowed
        if unknown:
            raise InvalidRequest(f"facet {name!r}: unknown option {sorted(unknown)[0]!r} for {kind}")
        field = args.get("field")
        ftype = field_type(field, types, f"facet {name!r}")
        if kind == "terms":
            size = args.get("size", 10)
            if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_TERMS_SIZE:
                raise InvalidRequest(f"facet {name!r}: size must be an integer 0..{MAX_TERMS_SIZE}")
            if ftype == schema.FLOAT:
                raise InvalidRequest(f"facet {name!r}: terms of the float field {field!r}; use histogram or stats")
            out[name] = ["terms", field, size]
        elif kind == "stats":
            if ftype == schema.KEYWORD:
                raise InvalidRequest(f"facet {name!r}: stats need a numeric or date field, {field!r} is a keyword")
            out[name] = ["stats", field]
        else:
            if ftype == schema.KEYWORD:
                raise InvalidRequest(f"facet {name!r}: histogram needs a numeric or date field, "
                                     f"{field!r} is a keyword")
            interval = args.get("interval")
            if isinstance(interval, bool) or not isinstance(interval, (int, float)) \
                    or not math.isfinite(interval) or interval <= 0:
                raise InvalidRequest(f"facet {name!r}: histogram needs a positive number 'interval'")
            out[name] = ["histogram", field, interval]
    return out


# ------------------------------------------------------------------ shard side
def shard_partials(specs: dict[str, list], shard, candidates: np.ndarray) -> dict[str, Any]:
    """Per facet, this shard's exact partial counts over the candidate documents."""
    n = len(candidates)
    numbers = None  # the candidates' numbers, found once for every single-valued facet
    out = {}
    for name, spec in specs.items():
        kind, field = spec[0], spec[1]
        column = shard.values.column(field)
        if column is None:
            out[name] = [] if kind != "stats" else [0, None, None, 0.0]
            continue
        dense = column.at_docs(n)
        if dense is not None:  # one value per document: read the matches' values directly
            if numbers is None:
                numbers = np.flatnonzero(candidates)
            vals = dense[numbers]
            out[name] = _single_valued(spec, column, vals[~np.isnan(vals)])
        else:
            out[name] = _multi_valued(spec, column, candidates)
    return out


def _single_valued(spec: list, column, vals: np.ndarray):
    """One facet's partial from the matching documents' values (float64, one per document
    that has one; keyword ordinals for keyword columns)."""
    kind = spec[0]
    integral = column.kind in ("k", "i")
    if kind == "terms":
        if column.kind == "k":
            counts = np.bincount(vals.astype(np.int64), minlength=len(column.term_list))
            return [[column.term_list[i], int(counts[i])] for i in np.flatnonzero(counts).tolist()]
        keys, counts = _counted(vals)
        keys = keys.astype(np.int64) if integral else keys
        return [[k, int(c)] for k, c in zip(keys.tolist(), counts.tolist())]
    if kind == "stats":
        if len(vals) == 0:
            return [0, None, None, 0.0]
        if integral:  # exact, as integers (the sum too, before it becomes a float)
            ints = vals.astype(np.int64)
            return [int(len(ints)), int(ints.min()), int(ints.max()), float(ints.sum())]
        return [int(len(vals)), float(vals.min()), float(vals.max()), float(vals.sum())]
    keys, counts = _counted(np.floor(vals / spec[2]))  # histogram
    return [[float(k), int(c)] for k, c in zip(keys.tolist(), counts.tolist())]


def _counted(whole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values ascending, how many times each) of whole numbers (histogram buckets,
    an integer column's values), as np.unique(return_counts=True) gives them; within a
    narrow range they are counted by a bincount, O(n) instead of a sort of every match."""
    if len(whole):
        lo, hi = float(whole.min()), float(whole.max())
        if hi - lo < BINCOUNT_RANGE:  # an infinite bucket (a float column's inf) never is
            counts = np.bincount((whole - lo).astype(np.int64))
            present = np.flatnonzero(counts)
            return present.astype(np.float64) + lo, counts[present]
    return np.unique(whole, return_counts=True)


def _multi_valued(spec: list, column, candidates: np.ndarray):
    """One facet's partial over the column's (document, value) pairs: a document with
    several values in one bucket counts once there."""
    kind, n = spec[0], len(candidates)
    docs, vals = column.arrays()
    keep = docs < n
    docs, vals = docs[keep], vals[keep]
    sel = candidates[docs]
    docs, vals = docs[sel], vals[sel]
    if kind == "terms":
        if column.kind == "k":
            counts = np.bincount(vals, minlength=len(column.term_list))
            nz = np.flatnonzero(counts)
            return [[column.term_list[i], int(counts[i])] for i in nz.tolist()]
        keys, counts = np.unique(vals, return_counts=True)
        return [[k, int(c)] for k, c in zip(keys.tolist(), counts.tolist())]
    if kind == "stats":
        if len(vals) == 0:
            return [0, None, None, 0.0]
        return [int(len(vals)), vals.min().item(), vals.max().item(), float(vals.sum())]
    buckets = np.floor(vals / spec[2])
    pairs = np.unique(np.stack([docs.astype(np.float64), buckets]), axis=1) if len(docs) else np.zeros((2, 0))
    keys, counts = np.unique(pairs[1], return_counts=True)
    return [[float(k), int(c)] for k, c in zip(keys.tolist(), counts.tolist())]


# ------------------------------------------------------------------ ingress side
def merge(specs: dict[str, list], partials: list[dict], types: dict[str, str]) -> dict[str, dict]:
    out = {}
    for name, spec in specs.items():
        kind, field = spec[0], spec[1]
        ftype = types[field]
        parts = [p[name] for p in partials]
        if kind == "terms":
            counts: dict = {}
            for part in parts:
                for key, count in part:
                    counts[key] = counts.get(key, 0) + count
            ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            size = spec[2]
            out[name] = {
                "buckets": [{"key": schema.display(ftype, k), "count": c} for k, c in ordered[:size]],
                "other": sum(c for _, c in ordered[size:]),
            }
        elif kind == "stats":
            count = sum(p[0] for p in parts)
            present = [p for p in parts if p[0]]
            total = sum(p[3] for p in parts)
            lo = min((p[1] for p in present), default=None)
            hi = max((p[2] for p in present), default=None)
            out[name] = {"count": count, "min": lo, "max": hi, "sum": total if count else 0.0,
                         "avg": total / count if count else None}
        else:
            interval = spec[2]
            counts = {}
            for part in parts:
                for key, count in part:
                    counts[key] = counts.get(key, 0) + count
            out[name] = {"buckets": _histogram_buckets(counts, interval, name)}
    return out


def _histogram_buckets(counts: dict[float, int], interval: float, name: str) -> list[dict]:
    """Every bucket from the lowest to the highest that has documents, empty ones included
    (as Elasticsearch's histogram with min_doc_count 0)."""
    if not counts:
        return []
    lo, hi = int(min(counts)), int(max(counts))
    if hi - lo >= MAX_HISTOGRAM_BUCKETS:
        raise InvalidRequest(f"facet {name!r}: the histogram would have more than {MAX_HISTOGRAM_BUCKETS} "
                             f"buckets; use a larger interval")
    out = []
    for b in range(lo, hi + 1):
        key = b * interval
        if isinstance(interval, int):
            key = int(key)
        out.append({"key": key, "count": counts.get(float(b), 0)})
    return out
