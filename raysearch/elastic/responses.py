"""raysearch answers -> Elasticsearch's response shapes (pure; never imports Ray)."""

from __future__ import annotations

from datetime import datetime, timezone
from fnmatch import fnmatchcase
from typing import Any

from raysearch import schema
from raysearch.elastic.errors import parsing
from raysearch.elastic import vectors as es_vectors
from raysearch.elastic.query_dsl import RS_TYPES

VERSION = "9.0.0"  # the Elasticsearch version this API presents (clients check the major)
PRODUCT_HEADERS = {"X-Elastic-Product": "Elasticsearch"}


def root_info(cluster_name: str = "raysearch") -> dict:
    return {
        "name": "raysearch",
        "cluster_name": cluster_name,
        "cluster_uuid": "raysearch",
        "version": {
            "number": VERSION,
            "build_flavor": "default",
            "build_type": "raysearch",
            "build_hash": "raysearch",
            "build_date": "2025-04-01T00:00:00.000Z",
            "build_snapshot": False,
            "lucene_version": "10.1.0",
            "minimum_wire_compatibility_version": "8.18.0",
            "minimum_index_compatibility_version": "8.0.0",
        },
        "tagline": "You Know, for Search",
    }


def shards(n: int = 1) -> dict:
    return {"total": n, "successful": n, "skipped": 0, "failed": 0}


def source(doc: dict) -> dict:
    """The stored document as Elasticsearch's _source: raysearch's `id` is the hit's `_id`."""
    return {k: v for k, v in doc.items() if k != "id"}


# ------------------------------------------------------------------ _source filtering
def source_spec(spec: Any, includes: str | None = None, excludes: str | None = None):
    """Normalise `_source` (body or URL) -> None (no source) or (includes, excludes) lists."""
    inc: list[str] = []
    exc: list[str] = []
    if spec is False or (isinstance(spec, str) and spec.lower() == "false"):
        return None
    if isinstance(spec, str) and spec.lower() != "true":
        inc = [s for s in spec.split(",") if s]
    elif isinstance(spec, list):
        inc = [str(s) for s in spec]
    elif isinstance(spec, dict):
        unknown = set(spec) - {"includes", "excludes", "include", "exclude"}
        if unknown:
            raise parsing(f"unknown key in _source: {sorted(unknown)[0]}")
        inc = _list(spec.get("includes", spec.get("include")))
        exc = _list(spec.get("excludes", spec.get("exclude")))
    elif spec not in (True, None) and not (isinstance(spec, str)):
        raise parsing("[_source] must be a boolean, a field pattern, a list or {includes, excludes}")
    if includes:
        inc = [s for s in includes.split(",") if s]
    if excludes:
        exc = [s for s in excludes.split(",") if s]
    return inc, exc


def _list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def filter_source(doc: dict, spec) -> dict | None:
    if spec is None:
        return None
    inc, exc = spec
    if not inc and not exc:
        return doc
    return _filter(doc, "", inc, exc)


def _filter(obj: dict, prefix: str, inc: list[str], exc: list[str]) -> dict:
    out = {}
    for key, value in obj.items():
        path = prefix + key
        if any(fnmatchcase(path, p) for p in exc):
            continue
        included = not inc or any(fnmatchcase(path, p) or path.startswith(p + ".") for p in inc)
        if isinstance(value, dict):
            parent = any(p.startswith(path + ".") or p == "*" or fnmatchcase(path + ".", p.split("*")[0] + "*")
                         for p in inc)
            if included and not exc:
                out[key] = value
            elif included or parent:
                child = _filter(value, path + ".", [] if included else inc, exc)
                if child or included:
                    out[key] = child
        elif included:
            out[key] = value
    return out


# ------------------------------------------------------------------ search
def search_response(index: str, result: dict, translated: dict, source_filter, took_ms: float | None = None,
                    types: dict[str, str] | None = None, n_shards: int = 1) -> dict:
    scored = not translated["sorted_by_field"] or translated.get("track_scores")
    hits = []
    for hit in result["hits"]:
        entry = {"_index": index, "_id": hit["id"], "_score": hit["score"] if scored else None}
        src = filter_source(source(hit["document"]), source_filter)
        if src is not None:
            entry["_source"] = src
        if "sort" in hit:
            entry["sort"] = hit["sort"]
        hits.append(entry)
    max_score = max((h["_score"] for h in hits), default=None) if scored else None
    out_hits: dict[str, Any] = {}
    tth = translated["track_total_hits"]
    if tth is not False:
        out_hits["total"] = {"value": result["total"], "relation": "eq"}
    out_hits["max_score"] = max_score
    out_hits["hits"] = hits
    took = result.get("took_ms", 0.0) if took_ms is None else took_ms
    out = {"took": int(round(took)), "timed_out": False, "_shards": shards(n_shards), "hits": out_hits}
    if translated["aggs"]:
        out["aggregations"] = aggregations(translated["aggs"], result.get("facets") or {}, translated,
                                           types or {})
    return out


def aggregations(renderers: dict[str, str], facets: dict, translated: dict, types: dict[str, str]) -> dict:
    out = {}
    for name, kind in renderers.items():
        facet = facets.get(name) or {}
        field = translated["request"]["facets"][name][next(iter(translated["request"]["facets"][name]))]["field"]
        ftype = types.get(field)
        if kind == "terms":
            out[name] = {"doc_count_error_upper_bound": 0, "sum_other_doc_count": facet.get("other", 0),
                         "buckets": [_bucket(b, ftype) for b in facet.get("buckets", [])]}
        elif kind == "histogram":
            out[name] = {"buckets": [{"key": float(b["key"]), "doc_count": b["count"]}
                                     for b in facet.get("buckets", [])]}
        else:
            count = facet.get("count", 0)
            stats = {"count": count, "min": facet.get("min"), "max": facet.get("max"),
                     "avg": facet.get("avg"), "sum": facet.get("sum", 0.0)}
            for key in ("min", "max", "sum", "avg"):
                if stats[key] is not None:
                    stats[key] = float(stats[key])
            if kind == "stats":
                out[name] = stats
            elif kind == "value_count":
                out[name] = {"value": count}
            else:
                out[name] = {"value": stats[kind]}
    return out


def _bucket(bucket: dict, ftype: str | None) -> dict:
    key = bucket["key"]
    out = {"key": key, "doc_count": bucket["count"]}
    if ftype == schema.BOOLEAN or isinstance(key, bool):
        out["key"] = int(bool(key))
        out["key_as_string"] = "true" if key else "false"
    elif ftype == schema.DATE:
        out["key_as_string"] = datetime.fromtimestamp(key / 1000, tz=timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%S.") + f"{int(key) % 1000:03d}Z"
    return out


# ------------------------------------------------------------------ indices
def mapping(settings: dict, dynamic_text: set[str] | None = None) -> dict:
    """Index settings -> Elasticsearch `mappings` ({"properties": ...}); undeclared string
    fields that documents have are shown as text (as dynamic mapping would have made them)."""
    english = (settings.get("analyzer") or {}).get("stemming") == "english"
    props: dict[str, Any] = {}
    for name in sorted(dynamic_text or ()):
        if name in ("_all", "id"):
            continue
        _put(props, name.split("."), {"type": "text"})
    for name, spec in (settings.get("fields") or {}).items():
        ftype = spec.get("type", schema.TEXT)
        if ftype == schema.VECTOR:
            props[name] = es_vectors.vector_mapping(spec)
            continue
        entry: dict[str, Any] = {"type": RS_TYPES.get(ftype, ftype)}
        if ftype == schema.TEXT and english:
            entry["analyzer"] = "english"
        props[name] = entry
    for entry in props.values():
        if entry.get("type") == "text" and english:
            entry.setdefault("analyzer", "english")
    return {"properties": props}


def _put(props: dict, parts: list[str], entry: dict) -> None:
    if len(parts) == 1:
        props.setdefault(parts[0], entry)
        return
    node = props.setdefault(parts[0], {"properties": {}})
    if "properties" not in node:
        return  # a text field and an object of the same name: keep the first
    _put(node["properties"], parts[1:], entry)


def index_settings(index: str, settings: dict) -> dict:
    return {"index": {"number_of_shards": str(settings.get("shards", 1)), "number_of_replicas": "0",
                      "provided_name": index, "uuid": index, "version": {"created": "9000000"}}}
