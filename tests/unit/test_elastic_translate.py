"""The Elasticsearch API's pure translation (raysearch/elastic/): query DSL -> raysearch
search request, bulk NDJSON -> documents/deletes and item results, index bodies ->
settings, raysearch answers -> Elasticsearch shapes. No Ray."""

from __future__ import annotations

import json

import pytest

from raysearch.elastic import bulk, responses
from raysearch.elastic.errors import ElasticError
from raysearch.elastic.query_dsl import IndexView, translate_query, translate_search, translate_sort
from raysearch.search import filters

VIEW = IndexView({"section": "keyword", "size": "integer", "price": "float", "day": "date", "ok": "boolean"},
                 {"title", "body"})


def q(query):
    return translate_query(query, VIEW)


def refused(query) -> ElasticError:
    with pytest.raises(ElasticError) as info:
        q(query)
    err = info.value
    assert err.status == 400
    body = err.to_json()
    assert body["status"] == 400 and body["error"]["root_cause"][0]["type"] == body["error"]["type"]
    return err


def test_scoring_queries_become_fielded_clauses(no_ray):
    assert q({"match": {"title": "Tiling window"}}) == {"q": "title:Tiling title:window"}
    assert q({"match": {"title": {"query": "a b", "operator": "and"}}}) == {"q": "+title:a +title:b"}
    assert q({"match": {"title": {"query": "a b", "minimum_should_match": "100%"}}}) == {"q": "+title:a +title:b"}
    assert q({"match_phrase": {"body": "window manager"}}) == {"q": '+body:"window manager"'}
    assert q({"multi_match": {"query": "x y", "fields": ["title^2", "body"]}}) == {"q": "x y", "fields": "title^2,body"}
    assert q({"multi_match": {"query": "x y", "fields": ["title", "nosuch"], "operator": "and"}}) == \
        {"q": "+x +y", "fields": "title"}
    assert q({"query_string": {"query": '"a b" +c -d', "default_operator": "AND"}}) == \
        {"q": '"a b" +c -d', "operator": "and"}
    assert q({"simple_query_string": {"query": "a | b", "fields": ["body"]}}) == \
        {"q": "a b", "operator": "or", "fields": "body"}
    assert q({"term": {"title": "window"}}) == {"q": "+title:window"}  # a text field: one analysed term


def test_filters_and_match_all(no_ray):
    assert q(None) == {} and q({"match_all": {}}) == {}
    assert q({"term": {"section": "web"}}) == {"filter": {"term": {"section": "web"}}}
    assert q({"terms": {"size": [1, 2]}}) == {"filter": {"terms": {"size": [1, 2]}}}
    assert q({"range": {"day": {"gte": "2024-01-01", "lt": "2025-01-01", "format": "strict_date_optional_time"}}}) \
        == {"filter": {"range": {"day": {"gte": "2024-01-01", "lt": "2025-01-01"}}}}
    assert q({"exists": {"field": "price"}}) == {"filter": {"exists": {"field": "price"}}}
    assert q({"ids": {"values": ["a", 7]}}) == {"filter": {"ids": ["a", "7"]}}
    assert q({"match": {"nosuch": "x"}}) == {"filter": {"or": []}}  # no document has the field: nothing
    assert q({"match_none": {}}) == {"filter": {"or": []}}
    assert q({"constant_score": {"filter": {"term": {"ok": True}}}}) == {"filter": {"term": {"ok": True}}}


def test_bool_combinations(no_ray):
    assert q({"bool": {"must": [{"match": {"title": "x y"}}], "filter": [{"term": {"section": "a"}},
                                                                         {"range": {"size": {"gt": 3}}}]}}) == \
        {"q": "title:x title:y", "filter": {"and": [{"term": {"section": "a"}}, {"range": {"size": {"gt": 3}}}]}}
    # should alone: at least one; a keyword term next to text clauses is an exact-term clause
    assert q({"bool": {"should": [{"match": {"title": "a b"}}, {"match_phrase": {"body": "c d"}},
                                  {"term": {"section": "web"}}]}}) == \
        {"q": 'title:a title:b body:"c d" section:"web"'}
    # must + should: should only scores; must_not text clauses are excluded
    assert q({"bool": {"must": {"match": {"body": "q"}}, "should": [{"match": {"title": "s"}}],
                       "must_not": [{"match": {"title": "z w"}}, {"term": {"section": "x"}}]}}) == \
        {"q": "+body:q title:s -title:z -title:w", "filter": {"not": {"term": {"section": "x"}}}}
    # should made only of filters: an `or` filter
    assert q({"bool": {"should": [{"term": {"section": "a"}}, {"range": {"size": {"lt": 2}}}]}}) == \
        {"filter": {"or": [{"term": {"section": "a"}}, {"range": {"size": {"lt": 2}}}]}}
    assert q({"bool": {"must_not": {"term": {"section": "x"}}}}) == {"filter": {"not": {"term": {"section": "x"}}}}
    # nested bools that stay conjunctive are flattened
    assert q({"bool": {"must": [{"bool": {"must": [{"match": {"title": "a"}}],
                                          "filter": {"term": {"section": "s"}}}},
                                {"match": {"body": "b"}}]}}) == \
        {"q": "+title:a +body:b", "filter": {"term": {"section": "s"}}}
    assert q({"bool": {"filter": {"term": {"section": "s"}}, "should": [{"match": {"title": "a"}}],
                       "minimum_should_match": 1}}) == {"q": "+title:a", "filter": {"term": {"section": "s"}}}
    # a keyword term under must scores in Elasticsearch: next to optional should it is an exact-term clause
    assert q({"bool": {"must": [{"term": {"section": "s"}}, {"range": {"size": {"gt": 1}}}],
                       "should": [{"match": {"title": "a b"}}]}}) == \
        {"q": '+section:"s" title:a title:b', "filter": {"range": {"size": {"gt": 1}}}}


@pytest.mark.parametrize("query, named", [
    ({"bool": {"filter": {"term": {"section": "s"}}, "should": [{"match": {"title": "a"}}]}}, "optional should"),
    ({"bool": {"must": [{"match": {"title": "a b"}}, {"match": {"body": "c d"}}]}}, "more than one required"),
    ({"bool": {"should": [{"bool": {"must": [{"match": {"title": "a"}}, {"match": {"body": "b"}}]}},
                          {"match": {"title": "c"}}]}}, "should clause"),
    ({"bool": {"should": [{"range": {"size": {"gt": 1}}}, {"match": {"title": "c"}}]}}, "range filter"),
    ({"bool": {"filter": {"match": {"title": "a"}}}}, "bool filter"),
    ({"bool": {"must_not": {"match": {"title": "a"}}}}, "must_not"),
    ({"query_string": {"query": "a AND (b OR c)"}}, "AND/OR/NOT"),
    ({"match": {"title": {"query": "a", "fuzziness": "3"}}}, "fuzziness must be AUTO, 0, 1 or 2"),
    ({"match": {"title": {"query": "a", "boost": 2}}}, "boost"),
    ({"term": {"title": "Windows"}}, "text field"),
    ({"range": {"title": {"gt": "a"}}}, "text field"),
    ({"wildcard": {"title": "a*"}}, "[wildcard] query"),
    ({"multi_match": {"query": "a", "type": "cross_fields"}}, "cross_fields"),
])
def test_unsupported_answers_400_naming_it(no_ray, query, named):
    assert named in refused(query).reason


def test_fuzziness_becomes_fuzzy_words(no_ray):
    assert q({"match": {"title": {"query": "pythn libary", "fuzziness": "AUTO"}}}) == {"q": "title:pythn~ title:libary~"}
    assert q({"match": {"title": {"query": "pythn", "fuzziness": 1}}}) == {"q": "+title:pythn~1"}
    assert q({"multi_match": {"query": "pythn", "fields": ["title"], "fuzziness": 2}})["q"] == "+pythn~2"
    assert q({"match": {"title": {"query": "pythn", "fuzziness": 0}}}) == {"q": "+title:pythn"}


def test_unknown_query_is_a_parsing_exception(no_ray):
    assert refused({"nosuch": {}}).type == "parsing_exception"


def test_search_body(no_ray):
    t = translate_search({"query": {"match": {"title": "x"}}, "from": 5, "size": 3,
                          "sort": [{"size": {"order": "desc"}}, "_score"], "search_after": [4, 1.5, "id9"],
                          "_source": ["title"], "track_total_hits": True,
                          "aggs": {"s": {"terms": {"field": "section", "size": 5}},
                                   "st": {"stats": {"field": "size"}},
                                   "h": {"histogram": {"field": "price", "interval": 10}},
                                   "mx": {"max": {"field": "size"}}}}, VIEW)
    r = t["request"]
    assert r["q"] == "+title:x" and r["from"] == 5 and r["size"] == 3
    assert r["sort"] == [{"size": "desc"}, "_score"] and r["search_after"] == [4, 1.5, "id9"]
    assert r["facets"] == {"s": {"terms": {"field": "section", "size": 5}}, "st": {"stats": {"field": "size"}},
                           "h": {"histogram": {"field": "price", "interval": 10}}, "mx": {"stats": {"field": "size"}}}
    assert t["aggs"] == {"s": "terms", "st": "stats", "h": "histogram", "mx": "max"}
    assert translate_sort("size:desc") == [{"size": "desc"}]
    for body, named in [({"highlight": {}}, "highlight"), ({"aggs": {"a": {"date_histogram": {"field": "day"}}}},
                                                           "date_histogram"),
                        ({"aggs": {"a": {"terms": {"field": "section"}, "aggs": {}}}}, "sub-aggregations"),
                        ({"sort": ["_doc"]}, "_doc")]:
        with pytest.raises(ElasticError) as info:
            translate_search(body, VIEW)
        assert named in info.value.reason


def test_translated_filters_parse(no_ray):
    """Whatever the translation emits is a filter raysearch accepts (including `ids`)."""
    types = VIEW.types
    for query in ({"ids": {"values": ["a"]}}, {"match": {"nosuch": "x"}},
                  {"bool": {"should": [{"term": {"section": "a"}}, {"range": {"size": {"lt": 2}}}],
                            "must_not": {"exists": {"field": "price"}}}}):
        parsed = filters.parse_filter(q(query)["filter"], types)
        assert parsed is not None
    assert filters.parse_filter({"ids": ["b", "a", "b"]}, types) == ["ids", ["a", "b"]]


def _ndjson(*lines) -> bytes:
    return ("\n".join(json.dumps(line) for line in lines) + "\n").encode()


def test_bulk_plan_in_order(no_ray):
    body = _ndjson({"index": {"_id": "1"}}, {"title": "one"},
                   {"create": {"_id": "2"}}, {"title": "two"},
                   {"create": {"_id": "old"}}, {"title": "dup"},
                   {"delete": {"_id": "1"}},
                   {"delete": {"_id": "nope"}},
                   {"update": {"_id": "old"}}, {"doc": {"title": "replaced"}},
                   {"update": {"_id": "new"}}, {"doc": {"title": "upserted"}, "doc_as_upsert": True},
                   {"update": {"_id": "missing"}}, {"doc": {"title": "x"}},
                   {"index": {}}, {"title": "generated"},
                   {"index": {"_index": "other", "_id": "o"}}, {"size": "not a number"},
                   {"update": {"_id": "old"}}, {"script": "ctx._source.x = 1"})
    actions = bulk.parse_bulk(body, "idx")
    plans, items = bulk.plan_bulk(actions, lambda index, doc_id: doc_id == "old",
                                  lambda index, doc: "size: not an integer" if doc.get("size") == "not a number"
                                  else None)
    statuses = [(op, item["status"], item.get("result") or item["error"]["type"])
                for op, item in (next(iter(i.items())) for i in items)]
    assert statuses == [("index", 201, "created"), ("create", 201, "created"),
                        ("create", 409, "version_conflict_engine_exception"), ("delete", 200, "deleted"),
                        ("delete", 404, "not_found"), ("update", 200, "updated"), ("update", 201, "created"),
                        ("update", 404, "document_missing_exception"), ("index", 201, "created"),
                        ("index", 400, "document_parsing_exception"), ("update", 400, "illegal_argument_exception")]
    plan = plans["idx"]
    generated = items[8]["index"]["_id"]
    assert set(plan.docs) == {"2", "old", "new", generated} and plan.deletes == {"1"}
    assert plan.docs["old"] == {"title": "replaced", "id": "old"}
    response = bulk.bulk_response(items, 3.2)
    assert response["errors"] is True and response["took"] == 3


def test_bulk_malformed_lines(no_ray):
    with pytest.raises(ElasticError):
        bulk.parse_bulk(b'{"nosuch": {}}\n{}\n', "i")
    with pytest.raises(ElasticError):
        bulk.parse_bulk(b"", "i")
    (action,) = bulk.parse_bulk(_ndjson({"index": {}}, {"a": 1}), None)
    assert action.error[1] == "action_request_validation_exception"  # no index anywhere


def test_index_body_to_settings(no_ray):
    body = {"settings": {"number_of_shards": 3, "index": {"number_of_replicas": 1}},
            "mappings": {"properties": {"title": {"type": "text"}, "tag": {"type": "keyword", "ignore_above": 256},
                                        "n": {"type": "short"}, "p": {"type": "scaled_float", "scaling_factor": 100},
                                        "b": {"type": "boolean"}, "d": {"type": "date"}}}}
    s = bulk.index_settings(body, 2)
    assert s["shards"] == 3 and s["analyzer"] == bulk.STANDARD
    assert s["fields"] == {"title": {"type": "text"}, "tag": {"type": "keyword"}, "n": {"type": "integer"},
                           "p": {"type": "float"}, "b": {"type": "boolean"}, "d": {"type": "date"}}
    english = bulk.index_settings({"mappings": {"properties": {"t": {"type": "text", "analyzer": "english"}}}}, 2)
    assert english["analyzer"] == bulk.ENGLISH and english["shards"] == 2
    for bad in ({"mappings": {"properties": {"t": {"type": "geo_point"}}}},
                {"mappings": {"properties": {"t": {"type": "text", "fields": {"raw": {"type": "keyword"}}}}}},
                {"settings": {"analysis": {"analyzer": {}}}},
                {"mappings": {"properties": {"t": {"type": "text", "analyzer": "french"}}}}):
        with pytest.raises(ElasticError):
            bulk.index_settings(bad, 2)


def test_responses(no_ray):
    result = {"total": 7, "took_ms": 2.0, "hits": [
        {"id": "a", "score": 2.5, "document": {"id": "a", "title": "x", "meta": {"k": 1, "j": 2}}},
        {"id": "b", "score": 1.0, "document": {"id": "b", "title": "y"}}],
        "facets": {"s": {"buckets": [{"key": "web", "count": 4}], "other": 3},
                   "b": {"buckets": [{"key": True, "count": 2}], "other": 0},
                   "st": {"count": 2, "min": 1, "max": 3, "sum": 4.0, "avg": 2.0},
                   "h": {"buckets": [{"key": 0, "count": 1}, {"key": 10, "count": 0}]}}}
    t = translate_search({"_source": {"includes": ["title", "meta.k"]},
                          "aggs": {"s": {"terms": {"field": "section"}}, "b": {"terms": {"field": "ok"}},
                                   "st": {"stats": {"field": "size"}}, "h": {"histogram": {"field": "size",
                                                                                           "interval": 10}}}}, VIEW)
    out = responses.search_response("idx", result, t, responses.source_spec(t["source"]), 1.2, VIEW.types)
    assert out["hits"]["total"] == {"value": 7, "relation": "eq"} and out["hits"]["max_score"] == 2.5
    assert out["hits"]["hits"][0] == {"_index": "idx", "_id": "a", "_score": 2.5,
                                      "_source": {"title": "x", "meta": {"k": 1}}}
    aggs = out["aggregations"]
    assert aggs["s"] == {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 3,
                         "buckets": [{"key": "web", "doc_count": 4}]}
    assert aggs["b"]["buckets"] == [{"key": 1, "key_as_string": "true", "doc_count": 2}]
    assert aggs["st"] == {"count": 2, "min": 1.0, "max": 3.0, "avg": 2.0, "sum": 4.0}
    assert aggs["h"] == {"buckets": [{"key": 0.0, "doc_count": 1}, {"key": 10.0, "doc_count": 0}]}
    assert responses.filter_source({"a": 1, "b": {"c": 2, "d": 3}}, responses.source_spec({"excludes": ["b.c"]})) \
        == {"a": 1, "b": {"d": 3}}
    assert responses.filter_source({"a": 1}, responses.source_spec(False)) is None
    m = responses.mapping({"analyzer": bulk.STANDARD, "fields": {"n": {"type": "integer"}}}, {"title", "a.b", "_all"})
    assert m == {"properties": {"a": {"properties": {"b": {"type": "text"}}}, "title": {"type": "text"},
                                "n": {"type": "long"}}}


def test_api_key_middleware_accepts_the_clients_apikey_scheme(no_ray, monkeypatch):
    """Elasticsearch clients send `Authorization: ApiKey <key>` (api_key="<key>"); Bearer still works."""
    from fastapi import FastAPI
    from starlette.testclient import TestClient

    from raysearch.serve.auth import APIKeyMiddleware

    app = FastAPI()

    @app.get("/_elastic/")
    async def root():
        return {"ok": True}

    app.add_middleware(APIKeyMiddleware)
    monkeypatch.setenv("RAYSEARCH_API_KEY", "s3cret")
    client = TestClient(app)
    assert client.get("/_elastic/").status_code == 401
    assert client.get("/_elastic/", headers={"Authorization": "ApiKey wrong"}).status_code == 401
    assert client.get("/_elastic/", headers={"Authorization": "ApiKey s3cret"}).json() == {"ok": True}
    assert client.get("/_elastic/", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def _request(query: str):
    from starlette.requests import Request

    return Request({"type": "http", "method": "GET", "path": "/_elastic/x/_search", "query_string": query.encode(),
                    "headers": []})


def test_boolean_and_op_type_parameters_are_strict():
    """As Elasticsearch: a flag is true for `?flag` or `true`, false if absent or `false`, and
    any other value is a 400 (illegal_argument_exception) naming the parameter; op_type is
    `index` or `create`."""
    from raysearch.elastic.routes import _flag, _op_type

    assert _flag(_request(""), "track_scores") is False
    assert _flag(_request("track_scores"), "track_scores") is True
    assert _flag(_request("track_scores=true"), "track_scores") is True
    assert _flag(_request("track_scores=false"), "track_scores") is False
    for bad in ("maybe", "1", "0", "yes", "TRUE", "false%20", "%00"):
        with pytest.raises(ElasticError) as info:
            _flag(_request(f"track_scores={bad}"), "track_scores")
        body = info.value.to_json()
        assert body["status"] == 400 and body["error"]["type"] == "illegal_argument_exception"
        assert "[track_scores]" in body["error"]["reason"], body
    assert _op_type(_request("")) == "index"
    assert _op_type(_request("op_type=create")) == "create" and _op_type(_request("op_type=INDEX")) == "index"
    for bad in ("upsert", "", "creat", "update"):
        with pytest.raises(ElasticError) as info:
            _op_type(_request(f"op_type={bad}"))
        assert info.value.status == 400 and info.value.type == "illegal_argument_exception"
        assert "op_type" in info.value.reason
