"""The request-level parts of a search body besides the query: `sort` and `aggs`
(pure; never imports Ray).

- `translate_sort`: an Elasticsearch sort -> raysearch's sort list;
- `translate_aggs`: aggregations -> raysearch facets, plus what the response needs to
  render them (`AGG_KINDS` lists the supported kinds).

Pagination (`from`, `size`, `search_after`) is read in `query_dsl.translate_search`;
`knn` and `retriever` in `vectors.py`.
"""

from __future__ import annotations

from typing import Any

from raysearch.elastic.dsl_base import _check_field_name
from raysearch.elastic.errors import parsing, unsupported


def translate_sort(spec: Any) -> list | None:
    if spec is None:
        return None
    items = spec if isinstance(spec, list) else [spec]
    out = []
    for item in items:
        if isinstance(item, str):
            name, _, order = item.partition(":")
            order = order or ("desc" if name == "_score" else "asc")
        elif isinstance(item, dict) and len(item) == 1:
            (name, opts), = item.items()
            if isinstance(opts, str):
                order = opts
            elif isinstance(opts, dict):
                order = opts.get("order", "desc" if name == "_score" else "asc")
                for key, value in opts.items():
                    if key in ("order", "unmapped_type", "format", "numeric_type"):
                        continue
                    if key == "missing" and value == "_last":
                        continue
                    if key == "mode" and value == ("max" if order == "desc" else "min"):
                        continue
                    raise unsupported(f"the sort option [{key}] = {value!r}")
            else:
                raise parsing(f"malformed sort for [{name}]")
        else:
            raise parsing("a sort is a field name, or {field: order}, or {field: {\"order\": ...}}")
        order = str(order).lower()
        if order not in ("asc", "desc"):
            raise parsing(f"sort order must be asc or desc, not {order!r}")
        if name == "_doc":
            raise unsupported("sorting by _doc (index order)")
        if name == "_score":
            if order != "desc":
                raise unsupported("sorting by _score ascending")
            out.append("_score")
        else:
            _check_field_name(name, "sort")
            out.append({name: order})
    return out


AGG_KINDS = ("terms", "stats", "histogram", "min", "max", "avg", "sum", "value_count")


def translate_aggs(spec: Any) -> tuple[dict, dict]:
    """aggs -> (raysearch facets, name -> (kind, options) to render the answer)."""
    if spec is None:
        return {}, {}
    if not isinstance(spec, dict):
        raise parsing("[aggs] must be an object: name -> {type: {...}}")
    facets, renderers = {}, {}
    for name, body in spec.items():
        if not isinstance(body, dict):
            raise parsing(f"aggregation [{name}] must be an object")
        body = {k: v for k, v in body.items() if k != "meta"}
        if "aggs" in body or "aggregations" in body:
            raise unsupported(f"sub-aggregations (in [{name}])")
        if len(body) != 1:
            raise parsing(f"aggregation [{name}] must have exactly one type")
        (kind, opts), = body.items()
        if kind not in AGG_KINDS:
            raise unsupported(f"the [{kind}] aggregation (terms, stats, histogram, min, max, avg, sum, "
                              f"value_count are supported)")
        if not isinstance(opts, dict) or not isinstance(opts.get("field"), str):
            raise parsing(f"aggregation [{name}] of type [{kind}] needs a 'field'")
        field = opts["field"]
        if kind == "terms":
            for key, value in opts.items():
                if key in ("field", "size", "shard_size", "show_term_doc_count_error"):
                    continue
                if key == "order" and value in ({"_count": "desc"}, [{"_count": "desc"}]):
                    continue
                if key == "min_doc_count" and value == 1:
                    continue
                raise unsupported(f"the option [{key}] of the terms aggregation")
            size = opts.get("size", 10)
            facets[name] = {"terms": {"field": field, "size": size}}
        elif kind == "histogram":
            for key, value in opts.items():
                if key in ("field", "interval"):
                    continue
                if key == "min_doc_count" and value == 0:
                    continue
                raise unsupported(f"the option [{key}] of the histogram aggregation")
            facets[name] = {"histogram": {"field": field, "interval": opts.get("interval")}}
        else:
            for key in opts:
                if key not in ("field",):
                    raise unsupported(f"the option [{key}] of the {kind} aggregation")
            facets[name] = {"stats": {"field": field}}
        renderers[name] = kind
    return facets, renderers
