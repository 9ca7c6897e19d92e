"""Sort orders and cursors (pure).

A sort is a list of keys, each `_score` (descending) or a typed field ascending or
descending; ties always end in id ascending, so the order is total and every hit's
`sort` values -- its key values then its id -- name its place exactly:
`search_after` those values continues strictly after it. A document without a
value for a field sorts last, in either direction; a list sorts by its smallest
value ascending and its largest descending.

Shards rank with float64 keys (shard-local, see index/doc_values.py); the ingress
merges the shards' hits by the values themselves (`merge_key`).
"""

from __future__ import annotations

from functools import total_ordering
from typing import Any

from raysearch import schema
from raysearch.errors import InvalidRequest
from raysearch.search.filters import field_type

SCORE = "_score"
ASC, DESC = "asc", "desc"
MAX_SORT_KEYS = 8


def parse_sort(spec: Any, types: dict[str, str]) -> list[list[str]]:
    """-> [[field, order], ...]; None or [] = [["_score", "desc"]]."""
    if spec is None or spec == []:
        return [[SCORE, DESC]]
    if not isinstance(spec, list):
        spec = [spec]
    if len(spec) > MAX_SORT_KEYS:
        raise InvalidRequest(f"sort: at most {MAX_SORT_KEYS} keys")
    out = []
    for item in spec:
        if isinstance(item, str):
            field, order = item, (DESC if item == SCORE else ASC)
        elif isinstance(item, dict) and len(item) == 1:
            (field, order), = item.items()
            if isinstance(order, dict) and set(order) == {"order"}:  # Elasticsearch's long form
                order = order["order"]
        else:
            raise InvalidRequest('sort: each key is "_score", "field", or {"field": "asc"|"desc"}')
        if order not in (ASC, DESC):
            raise InvalidRequest(f"sort: order of {field!r} must be 'asc' or 'desc', not {order!r}")
        if field != SCORE:
            field_type(field, types, "sort")
        out.append([field, order])
    return out


def uses_score(keys: list[list[str]]) -> bool:
    return any(f == SCORE for f, _ in keys)


def parse_after(values: Any, keys: list[list[str]], types: dict[str, str]) -> list | None:
    """search_after values -> [normalised key values, id or None]; 400 if they do not fit the sort."""
    if values is None:
        return None
    if not isinstance(values, list) or len(values) not in (len(keys), len(keys) + 1):
        raise InvalidRequest(f"search_after must be the previous page's last hit's `sort` values: "
                             f"a list of {len(keys) + 1} values for this sort")
    out = []
    for (field, _), value in zip(keys, values):
        if value is None:
            out.append(None)  # a document without the field (sorted last)
        elif field == SCORE:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidRequest(f"search_after: the _score value must be a number, not {value!r}")
            out.append(float(value))
        else:
            try:
                out.append(schema.normalize(field, types[field], value))
            except ValueError as exc:
                raise InvalidRequest(f"search_after: {exc}") from None
    doc_id = values[len(keys)] if len(values) > len(keys) else None
    if doc_id is not None and not isinstance(doc_id, str):
        raise InvalidRequest("search_after: the last value (the id) must be a string")
    return [out, doc_id]


@total_ordering
class _Reversed:
    """Orders like the value it wraps, backwards (descending keys of any type)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return self.value == other.value

    def __lt__(self, other):
        return other.value < self.value


def merge_key(keys: list[list[str]], values: list, doc_id: str) -> tuple:
    """A hit's place in the total order, from its sort values (missing values last)."""
    out = []
    for (field, order), value in zip(keys, values):
        if value is None:
            out.append((1, 0))
        elif order == DESC:
            out.append((0, -value) if isinstance(value, (int, float)) else (0, _Reversed(value)))
        else:
            out.append((0, value))
    out.append(doc_id)
    return tuple(out)
