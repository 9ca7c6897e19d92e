"""Filters (pure): parsed and checked at the ingress against the index's typed fields,
evaluated on a shard as a boolean mask over its document numbers. Filters never score.

    {"term": {f: v}}   {"terms": {f: [v, ...]}}   {"range": {f: {"gt"|"gte"|"lt"|"lte": v}}}
    {"exists": {"field": f}}   {"ids": [id, ...]}   {"and": [...]}   {"or": [...]}   {"not": filter}   [a, b] = and

The parsed form is plain lists (cheap to send to shards), values already normalised:
    ["term", field, [values]]  ["range", field, [[op, value], ...]]  ["exists", field]  ["ids", [ids]]
    ["and", [nodes]]  ["or", [nodes]]  ["not", node]
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import Any

import numpy as np

from raysearch import schema
from raysearch.errors import InvalidRequest

RANGE_OPS = ("gt", "gte", "lt", "lte")
MAX_NODES = 1024


def field_type(field: Any, types: dict[str, str], use: str) -> str:
    """The type of a field that a filter, sort or facet names; 400 naming it otherwise."""
    if not isinstance(field, str) or not field:
        raise InvalidRequest(f"{use}: a field name must be a non-empty string, got {field!r}")
    ftype = types.get(field)
    if ftype is None:
        raise InvalidRequest(f"{use}: field {field!r} is not declared with a type; declare it as keyword, "
                             f"integer, float, boolean or date in the index settings")
    if ftype == schema.TEXT:
        raise InvalidRequest(f"{use}: field {field!r} is a text field; only keyword, integer, float, "
                             f"boolean and date fields can be used here")
    return ftype


def normalize_value(field: str, ftype: str, value: Any, use: str):
    try:
        return schema.normalize(field, ftype, value)
    except ValueError as exc:
        raise InvalidRequest(f"{use}: {exc}") from None


def parse_filter(spec: Any, types: dict[str, str]) -> list | None:
    """The checked, normalised filter tree, or None for no filter."""
    if spec is None or spec == [] or spec == {}:
        return None
    counter = [0]
    return _parse(spec, types, counter, 0)


def _parse(spec: Any, types: dict[str, str], counter: list, depth: int) -> list:
    counter[0] += 1
    if counter[0] > MAX_NODES or depth > 32:
        raise InvalidRequest(f"filter is too large (more than {MAX_NODES} parts or 32 levels)")
    if isinstance(spec, list):
        return ["and", [_parse(s, types, counter, depth + 1) for s in spec]]
    if not isinstance(spec, dict) or len(spec) != 1:
        raise InvalidRequest("filter: each filter is an object with exactly one operator "
                             "(term, terms, range, exists, and, or, not)")
    (op, body), = spec.items()
    if op in ("and", "or"):
        if not isinstance(body, list):
            raise InvalidRequest(f"filter: '{op}' takes a list of filters")
        return [op, [_parse(s, types, counter, depth + 1) for s in body]]
    if op == "not":
        return ["not", _parse(body, types, counter, depth + 1)]
    if op == "ids":  # document ids (the Elasticsearch API's `ids` query)
        if not isinstance(body, list) or not all(isinstance(v, str) for v in body) or len(body) > MAX_NODES:
            raise InvalidRequest(f"filter: 'ids' takes a list of at most {MAX_NODES} document id strings")
        return ["ids", sorted(set(body))]
    if op == "exists":
        if not isinstance(body, dict) or set(body) != {"field"}:
            raise InvalidRequest('filter: exists takes {"field": name}')
        field = body["field"]
        field_type(field, types, "filter exists")
        return ["exists", field]
    if op in ("term", "terms", "range"):
        if not isinstance(body, dict) or len(body) != 1:
            raise InvalidRequest(f"filter: '{op}' takes an object with exactly one field")
        (field, arg), = body.items()
        ftype = field_type(field, types, f"filter {op}")
        if op == "term":
            if isinstance(arg, (list, dict)):
                raise InvalidRequest(f"filter term: field {field!r} takes one value (use 'terms' for several)")
            return ["term", field, [normalize_value(field, ftype, arg, "filter term")]]
        if op == "terms":
            if not isinstance(arg, list):
                raise InvalidRequest(f"filter terms: field {field!r} takes a list of values")
            if len(arg) > MAX_NODES:
                raise InvalidRequest(f"filter terms: more than {MAX_NODES} values")
            return ["term", field, [normalize_value(field, ftype, v, "filter terms") for v in arg]]
        if not isinstance(arg, dict) or not arg:
            raise InvalidRequest(f"filter range: field {field!r} takes an object of gt/gte/lt/lte bounds")
        bounds = []
        for bop, value in arg.items():
            if bop not in RANGE_OPS:
                raise InvalidRequest(f"filter range: unknown operator {bop!r}; use gt, gte, lt or lte")
            bounds.append([bop, normalize_value(field, ftype, value, "filter range")])
        return ["range", field, bounds]
    raise InvalidRequest(f"filter: unknown operator {op!r}; use term, terms, range, exists, ids, and, or, not")


def range_node(field: str, bounds: list) -> list:
    return ["range", field, bounds]


# ------------------------------------------------------------------ shard side
# A search box sends the same few filters again and again (a category, "in stock", a
# price band): each shard keeps the masks of its latest filters, for as long as its
# documents do not change (its statistics version, which every apply moves), as
# Elasticsearch caches the filters used often on each segment. A mask is n bytes; at
# most MASK_CACHE_BYTES of them per shard, the least recently used dropped first.
MASK_CACHE_BYTES = 32 << 20
_masks: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # shard -> {filter: (version, n, mask)}


def evaluate(node: list, shard, n: int) -> np.ndarray:
    """Boolean mask over document numbers < n (live documents only) of one shard. The
    same array may be returned to other searches: read-only, never to be changed."""
    version = shard.stats_version()
    if version is None:  # an apply is changing the documents: nothing to cache
        return _eval(node, shard, n) & shard.stats.live_mask(n)
    cache = _masks.get(shard)
    if cache is None:
        cache = _masks.setdefault(shard, OrderedDict())
    key = repr(node)
    hit = cache.get(key)
    if hit is not None and hit[0] == version and hit[1] == n:
        try:
            cache.move_to_end(key)
        except KeyError:  # dropped by another thread meanwhile
            pass
        return hit[2]
    mask = _eval(node, shard, n) & shard.stats.live_mask(n)
    mask.flags.writeable = False
    if shard.stats_version() == version:  # read whole: no apply ran meanwhile
        # Masks of an older version can never be hit again (every apply moves it): dropped
        # now, not when the bound pushes them out, so a shard that takes writes between
        # searches does not hold MASK_CACHE_BYTES of dead masks (issue 24's soak).
        for stale in [k for k, entry in list(cache.items()) if entry[0] != version]:
            cache.pop(stale, None)
        cache[key] = (version, n, mask)
        held = sum(entry[2].nbytes for entry in list(cache.values()))
        while held > MASK_CACHE_BYTES and len(cache) > 1:
            try:
                _, (_, _, dropped) = cache.popitem(last=False)
            except KeyError:
                break
            held -= dropped.nbytes
    return mask


def _eval(node: list, shard, n: int) -> np.ndarray:
    op = node[0]
    if op == "and":
        mask = np.ones(n, dtype=bool)
        for child in node[1]:
            mask &= _eval(child, shard, n)
        return mask
    if op == "or":
        mask = np.zeros(n, dtype=bool)
        for child in node[1]:
            mask |= _eval(child, shard, n)
        return mask
    if op == "not":
        return ~_eval(node[1], shard, n)
    mask = np.zeros(n, dtype=bool)
    if op == "ids":  # from the shard's number -> id map
        wanted = set(node[1])
        numbers = [i for i, doc_id in enumerate(shard.stats.doc_ids[:n]) if doc_id in wanted]
        mask[numbers] = True
        return mask
    column = shard.values.column(node[1])
    if op == "term" and column is not None and column.kind == "k":
        # keyword values are exact terms too: a term filter is a posting lookup
        for value in node[2]:
            numbers = shard.posting_arrays(node[1], value)[0]
            mask[numbers[numbers < n]] = True
        return mask
    if column is None:
        return mask
    dense = column.at_docs(n) if op == "exists" or column.kind != "k" else None
    if dense is not None:  # one value per document: one vectorised pass over the numbers
        if op == "exists":
            return ~np.isnan(dense)
        if op == "term":
            return np.isin(dense, [column.key_of(v) for v in node[2]])
        return _in_range(dense, column, node[2])
    docs, vals = column.comparable()
    keep = docs < n
    docs, vals = docs[keep], vals[keep]
    if op == "exists":
        mask[docs] = True
    elif op == "term":
        keys = [column.key_of(v) for v in node[2]]
        mask[docs[np.isin(vals, keys)]] = True
    elif op == "range":
        mask[docs[_in_range(vals, column, node[2])]] = True
    return mask


def _in_range(vals: np.ndarray, column, bounds: list) -> np.ndarray:
    """Which values fall within every bound (NaN, no value, within none)."""
    sel = np.ones(len(vals), dtype=bool)
    for bop, value in bounds:
        key = column.key_of(value)
        if bop == "gt":
            sel &= vals > key
        elif bop == "gte":
            sel &= vals >= key
        elif bop == "lt":
            sel &= vals < key
        else:
            sel &= vals <= key
    return sel
