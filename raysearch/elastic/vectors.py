"""Elasticsearch's vector search, translated: `dense_vector` mappings, the top-level `knn`
of `_search`, and `retriever` (`standard`, `knn`, `rrf`).

What maps exactly: a kNN search (one `knn`, or a `knn` retriever); RRF over one standard
and one knn retriever (`rank_constant`, `rank_window_size`), which is what
langchain-elasticsearch's hybrid strategy sends. What is refused with a clear 400 rather
than answered differently: `knn` beside a `query` (Elasticsearch sums the two scores; use
the rrf retriever), several knn clauses, `query_vector_builder` (no inference models
here), and retrievers whose filters differ (raysearch applies a search's filter to both
lists, and a knn's own filter on top of it).
"""

from __future__ import annotations

from typing import Any, Callable

from raysearch import schema
from raysearch.elastic.errors import parsing, unsupported

# Elasticsearch's similarity names -> raysearch's
SIMILARITIES = {"cosine": "cosine", "dot_product": "dot_product", "l2_norm": "l2"}
ES_SIMILARITIES = {v: k for k, v in SIMILARITIES.items()}
VECTOR_OPTIONS = {"dims", "similarity", "index", "index_options", "element_type"}


def vector_field(name: str, spec: dict) -> dict:
    """A `dense_vector` mapping -> a raysearch field declaration."""
    dims = spec.get("dims")
    if isinstance(dims, bool) or not isinstance(dims, int) or not 1 <= dims <= schema.MAX_DIMS:
        raise parsing(f"[dims] of the dense_vector field [{name}] must be a whole number from 1 to {schema.MAX_DIMS}")
    similarity = spec.get("similarity", "cosine")
    if similarity not in SIMILARITIES:
        raise unsupported(f"the similarity [{similarity}] of [{name}] (cosine, dot_product or l2_norm)")
    if spec.get("element_type", "float") != "float":
        raise unsupported(f"the element_type [{spec['element_type']}] of [{name}] (float only)")
    return {"type": schema.VECTOR, "dims": dims, "similarity": SIMILARITIES[similarity]}


def vector_mapping(spec: dict) -> dict:
    """A raysearch vector field as `_mapping` shows it."""
    return {"type": "dense_vector", "dims": spec.get("dims"), "index": True,
            "similarity": ES_SIMILARITIES.get(spec.get("similarity") or "cosine", "cosine")}


def translate(body: dict, translate_query: Callable[[Any], dict]) -> tuple[Any, dict]:
    """A search body with `knn` or `retriever` -> (the query to translate as usual, extra
    SearchRequest params: knn, rank, and the filter both lists share)."""
    if "retriever" in body:
        if "query" in body or "knn" in body:
            raise parsing("cannot specify [retriever] and [query] or [knn] together")
        return _retriever(body["retriever"], translate_query)
    if body.get("query") is not None:
        raise unsupported("knn beside a query (Elasticsearch sums their scores); fuse them with "
                          "the rrf retriever: {\"retriever\": {\"rrf\": {\"retrievers\": [{\"standard\": ...}, "
                          "{\"knn\": ...}]}}}")
    knn, flt = _knn(body["knn"], translate_query)
    return None, {"knn": knn, **({"filter": flt} if flt is not None else {})}


def _retriever(spec: Any, translate_query) -> tuple[Any, dict]:
    if not isinstance(spec, dict) or len(spec) != 1:
        raise parsing("[retriever] must be an object with exactly one of standard, knn, rrf")
    (kind, body), = spec.items()
    if not isinstance(body, dict):
        raise parsing(f"[retriever.{kind}] must be an object")
    if kind == "standard":
        return _standard(body), {}
    if kind == "knn":
        knn, flt = _knn(body, translate_query)
        return None, {"knn": knn, **({"filter": flt} if flt is not None else {})}
    if kind != "rrf":
        raise unsupported(f"the retriever [{kind}] (standard, knn, rrf)")
    unknown = set(body) - {"retrievers", "rank_constant", "rank_window_size"}
    if unknown:
        raise unsupported(f"[{sorted(unknown)[0]}] in the rrf retriever")
    parts = body.get("retrievers")
    if not isinstance(parts, list) or sorted(
            next(iter(p)) if isinstance(p, dict) and len(p) == 1 else "?" for p in parts) != ["knn", "standard"]:
        raise unsupported("an rrf retriever over anything but one standard and one knn retriever")
    by_kind = {next(iter(p)): next(iter(p.values())) for p in parts}
    query = _standard(by_kind["standard"])
    text_filter = translate_query(query).get("filter")
    knn, knn_filter = _knn(by_kind["knn"], translate_query)
    if knn_filter != text_filter:
        raise unsupported("retrievers with different filters in one rrf (raysearch filters both lists alike: "
                          "give the knn retriever the standard query's filter)")
    rrf: dict[str, Any] = {}
    if "rank_constant" in body:
        rrf["rank_constant"] = body["rank_constant"]
    if "rank_window_size" in body:
        rrf["window"] = body["rank_window_size"]
    return query, {"knn": knn, "rank": {"rrf": rrf}}


def _standard(body: dict) -> Any:
    unknown = set(body) - {"query", "filter"}
    if unknown:
        raise unsupported(f"[{sorted(unknown)[0]}] in the standard retriever")
    query = body.get("query")
    if body.get("filter") is not None:
        extra = body["filter"] if isinstance(body["filter"], list) else [body["filter"]]
        query = {"bool": {"must": [query] if query is not None else [], "filter": extra}}
    return query


def _knn(spec: Any, translate_query) -> tuple[dict, Any]:
    """An Elasticsearch knn object -> (raysearch knn params, its filter translated or None)."""
    if isinstance(spec, list):
        if len(spec) != 1:
            raise unsupported("several knn clauses in one search")
        spec = spec[0]
    if not isinstance(spec, dict):
        raise parsing("[knn] must be an object")
    if "query_vector_builder" in spec:
        raise unsupported("query_vector_builder (no inference models here); send query_vector")
    unknown = set(spec) - {"field", "query_vector", "k", "num_candidates", "filter", "similarity", "boost"}
    if unknown:
        raise unsupported(f"[{sorted(unknown)[0]}] in knn")
    if "query_vector" not in spec:
        raise parsing("[knn] requires [query_vector]")
    out = {"field": spec.get("field"), "vector": spec["query_vector"]}
    for key in ("k", "num_candidates", "similarity"):
        if key in spec:
            out[key] = spec[key]
    flt = None
    raw = spec.get("filter")
    if raw is not None and raw != []:
        clauses = raw if isinstance(raw, list) else [raw]
        translated = translate_query({"bool": {"filter": clauses}})
        if set(translated) - {"filter"}:
            raise unsupported("scoring queries inside a knn filter (filters only: term, range, exists, ids, bool)")
        flt = translated.get("filter")
    return out, flt
