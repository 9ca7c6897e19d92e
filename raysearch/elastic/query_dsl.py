"""Elasticsearch query DSL -> a raysearch search request (pure; never imports Ray).

raysearch's query is flat: required (`+a`), optional (`a`) and excluded (`-a`) clauses
in its lenient syntax, where optional clauses are required-at-least-one when nothing
is required (Lucene's BooleanQuery), plus a filter tree that does not score. An
Elasticsearch query is translated into that shape (`Flat`) or refused with a 400
naming what cannot be expressed faithfully:

- scoring queries (`match`, `multi_match`, `match_phrase`, `query_string`,
  `simple_query_string`, `term` on a text field) become clauses of `q`, always
  fielded (`title:word`) except multi_match's, which use the request's `fields`;
- `term`, `terms`, `range`, `exists`, `ids` on typed fields, and `bool.filter`,
  become raysearch filters (they select, they do not score);
- `bool` combines them when the combination is one raysearch can run.

The index is described by an `IndexView` (its typed fields, its searchable text
fields, its analysis), so the translation needs no service.

Where things are (this module is the entry point; the others are imported by it):

- `query_dsl.py` (here): `translate_search` (a whole search body: unknown and
  unsupported keys, pagination, `search_after`, `track_total_hits`), `translate_query`
  (one query -> SearchRequest params) and `emit` (a `Flat` -> those params);
- `dsl_base.py`: type maps, `IndexView`, `Flat`, and the argument checks shared by
  the query translators;
- `dsl_leaf.py`: leaf queries (match, match_phrase, multi_match, query_string,
  simple_query_string, term, terms, range, exists, ids, match_all, match_none);
- `dsl_compound.py`: the dispatch `_translate` and the compound queries (bool,
  constant_score);
- `dsl_sort_aggs.py`: `sort` and `aggs`;
- `vectors.py`: `knn` and `retriever`.

The names other modules import from here (`IndexView`, `ES_TYPES`, `RS_TYPES`,
`translate_search`, `translate_query`, `translate_sort`, ...) are re-exported below.
"""

from __future__ import annotations

from typing import Any

from raysearch.elastic import vectors as es_vectors
from raysearch.elastic.dsl_base import (
    DEFAULT_FIELDS,
    ES_TYPES,
    MAX_DEPTH,
    RS_TYPES,
    Flat,
    IndexView,
    _same_fields,
)
from raysearch.elastic.dsl_compound import _translate
from raysearch.elastic.dsl_sort_aggs import AGG_KINDS, translate_aggs, translate_sort
from raysearch.elastic.errors import parsing, unsupported

__all__ = [
    "AGG_KINDS", "DEFAULT_FIELDS", "ES_TYPES", "MAX_DEPTH", "RS_TYPES", "Flat", "IndexView",
    "emit", "translate_aggs", "translate_query", "translate_search", "translate_sort",
]


# ------------------------------------------------------------------ entry points
def translate_search(body: dict, view: IndexView, max_size: int = 10_000) -> dict:
    """A search body -> {"request": SearchRequest params, "source": _source spec,
    "track_total_hits": ..., "aggs": agg specs (for the response), "sorted_by_field": bool}."""
    known = {"query", "from", "size", "sort", "search_after", "_source", "track_total_hits", "aggs",
             "aggregations", "timeout", "track_scores", "stored_fields", "version", "seq_no_primary_term",
             "explain", "highlight", "min_score", "post_filter", "collapse", "rescore", "suggest", "pit",
             "runtime_mappings", "fields", "docvalue_fields", "script_fields", "knn", "profile",
             "indices_boost", "terminate_after", "rank", "retriever", "slice", "stats", "ext"}
    for key in body:
        if key not in known:
            raise parsing(f"Unknown key for a START_OBJECT in [{key}].")
    for key in ("highlight", "min_score", "post_filter", "collapse", "rescore", "suggest", "pit",
                "runtime_mappings", "fields", "docvalue_fields", "script_fields", "profile",
                "indices_boost", "terminate_after", "rank", "slice", "explain", "stored_fields"):
        if key in body:
            raise unsupported(f"'{key}' in a search")
    if "aggs" in body and "aggregations" in body:
        raise parsing("Found two aggregation definitions: [aggs] and [aggregations]")
    query, vector_params = body.get("query"), {}
    if "knn" in body or "retriever" in body:  # elastic/vectors.py
        query, vector_params = es_vectors.translate(body, lambda q: translate_query(q, view))
    request = translate_query(query, view)
    if vector_params.get("filter") is not None and request.get("filter") is not None:
        request["filter"] = {"and": [request["filter"], vector_params.pop("filter")]}
    request.update(vector_params)
    for key in ("from", "size"):
        if key in body:
            value = body[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise parsing(f"[{key}] must be a non-negative integer, got {value!r}")
            request[key] = value
    sort = translate_sort(body.get("sort"))
    if sort is not None:
        request["sort"] = sort
    if body.get("search_after") is not None:
        if not isinstance(body["search_after"], list):
            raise parsing("[search_after] must be an array of the previous page's last `sort` values")
        if sort is None:
            request["sort"] = ["_score"]
        request["search_after"] = body["search_after"]
    aggs = body.get("aggs", body.get("aggregations"))
    facets, renderers = translate_aggs(aggs)
    if facets:
        request["facets"] = facets
    tth = body.get("track_total_hits", True)
    if not isinstance(tth, (bool, int)):
        raise parsing("[track_total_hits] must be a boolean or an integer")
    return {"request": request, "source": body.get("_source", True), "track_total_hits": tth,
            "aggs": renderers, "sorted_by_field": sort is not None and "_score" not in sort,
            "track_scores": bool(body.get("track_scores"))}


def translate_query(query: Any, view: IndexView) -> dict:
    """An Elasticsearch query (None = match_all) -> SearchRequest params q/fields/operator/filter."""
    flat = Flat() if query is None else _translate(query, view, 0)
    return emit(flat)


def emit(flat: Flat) -> dict:
    out: dict[str, Any] = {}
    if flat.none:
        return {"filter": {"or": []}}  # an `or` of nothing matches nothing
    if len(flat.groups) > 1:
        raise unsupported("more than one required 'or' of scoring queries (e.g. two multi-word match queries "
                          "in must; use operator 'and', or put them in one bool.should)")
    if flat.groups and (flat.must or flat.should):
        raise unsupported("a multi-word match (operator 'or') or a should group required alongside other "
                          "scoring clauses (use operator 'and' or minimum_should_match)")
    if flat.should and not flat.must:
        raise unsupported("optional should clauses without a scoring must clause (a bool with filter and "
                          "should matches every filtered document; set minimum_should_match: 1 or use must)")
    if flat.raw is not None:
        if flat.must or flat.groups or flat.should:
            raise unsupported("query_string/simple_query_string combined with other scoring queries")
        q, fields, operator = flat.raw
        parts = [q] + [f"-{a}" for a in flat.must_not]
        out.update(q=" ".join(parts), operator=operator)
        flat.fields = _same_fields(flat.fields, fields)
    else:
        positive = flat.must or flat.groups
        if flat.must_not and not positive:
            raise unsupported("must_not of text queries (match, match_phrase...) without a scoring must "
                              "clause; only filters (term, range, exists, ids) can be excluded on their own")
        parts = [f"+{a}" for a in flat.must] + [a for g in flat.groups for a in g] + flat.should + \
            [f"-{a}" for a in flat.must_not]
        if parts:
            out["q"] = " ".join(parts)
    if flat.fields and "q" in out:
        out["fields"] = flat.fields
    if flat.filters:
        out["filter"] = flat.filters[0] if len(flat.filters) == 1 else {"and": list(flat.filters)}
    return out
