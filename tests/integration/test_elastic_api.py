"""The Elasticsearch-compatible API (`/_elastic`, docs/api.md) through the official
`elasticsearch` Python client (9.x), unchanged, against the running test service.

Answers are compared with raysearch's own API on the same documents (a twin index
made through `/indexes`), with the brute-force BM25 oracle (tests/oracle.py) and with
the structured oracle (tests/structured_oracle.py) for filters, sorting and aggregations.
"""

from __future__ import annotations

import math
import time
import zlib

import pytest
from elasticsearch import BadRequestError, NotFoundError, helpers

from raysearch.analysis.analyzer import Analyzer, AnalyzerSettings
from tests.conftest import debian_docs
from tests.oracle import Oracle, assert_same_ranking
from tests.structured_oracle import StructuredOracle

N_DOCS = 1500
INDEX, TWIN = "es-debian", "es-debian-twin"
ES_MAPPING = {"title": {"type": "text"}, "body": {"type": "text"}, "section": {"type": "keyword"},
              "priority": {"type": "keyword"}, "architecture": {"type": "keyword"},
              "installed_size": {"type": "integer"}, "size": {"type": "long"}, "essential": {"type": "boolean"},
              "released": {"type": "date"}, "rating": {"type": "half_float"}}
TYPES = {"section": "keyword", "priority": "keyword", "architecture": "keyword", "installed_size": "integer",
         "size": "integer", "essential": "boolean", "released": "date", "rating": "float"}
STANDARD = AnalyzerSettings(stemming=None, stopwords=None, ascii_folding=False)


def _docs() -> list[dict]:
    docs = []
    for doc in debian_docs(0, N_DOCS):
        h = zlib.crc32(doc["id"].encode())
        doc["released"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_500_000_000 + (h % 3650) * 86_400))
        if h % 4:
            doc["rating"] = (h % 100) / 10
        docs.append(doc)
    return docs


@pytest.fixture(scope="module")
def corpus(es, http):
    docs = _docs()
    es.indices.delete(index=INDEX, ignore_unavailable=True)
    http.delete(f"/indexes/{TWIN}")
    es.indices.create(index=INDEX, mappings={"properties": ES_MAPPING}, settings={"number_of_shards": 3})
    ok, errors = helpers.bulk(es, ({"_index": INDEX, "_id": d["id"], "_source": {k: v for k, v in d.items()
                                                                                 if k != "id"}}
                                   for d in docs), chunk_size=500)
    assert ok == N_DOCS and errors == []
    es.indices.refresh(index=INDEX)
    # The same documents through raysearch's own API, same analysis and types.
    r = http.put(f"/indexes/{TWIN}", json={"shards": 2, "analyzer": STANDARD.model_dump(),
                                           "fields": {f: {"type": t} for f, t in TYPES.items()}
                                           | {"title": {"type": "text"}, "body": {"type": "text"}}})
    assert r.status_code == 201, r.text
    r = http.post(f"/bulk-indexing/{TWIN}", json=docs)
    assert r.status_code == 202, r.text
    from tests.conftest import wait_operation

    assert wait_operation(http, r.json()["operation_id"])["status"] == "completed"
    return docs


def _native(http, body) -> dict:
    r = http.post(f"/indexes/{TWIN}/search", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def _same_hits(es_hits: list[dict], native_hits: list[dict]):
    assert [h["_id"] for h in es_hits] == [h["id"] for h in native_hits]
    for a, b in zip(es_hits, native_hits):
        assert math.isclose(a["_score"], b["score"], rel_tol=1e-9), (a, b)
        assert a["_source"] == {k: v for k, v in b["document"].items() if k != "id"}


# ------------------------------------------------------------------ cluster and indices
def test_info_ping_and_product_header(es, service):
    import httpx

    info = es.info()
    assert info["version"]["number"].startswith("9.") and info["tagline"] == "You Know, for Search"
    assert es.ping()
    r = httpx.get(service.url + "/_elastic/nosuch-endpoint/_stats")
    assert r.status_code == 400 and r.headers["x-elastic-product"] == "Elasticsearch"
    assert r.json()["error"]["root_cause"][0]["type"] == r.json()["error"]["type"]


def test_indices_exists_mapping_and_errors(es, corpus):
    assert es.indices.exists(index=INDEX)
    assert not es.indices.exists(index="es-no-such-index")
    props = es.indices.get_mapping(index=INDEX)[INDEX]["mappings"]["properties"]
    assert props["section"] == {"type": "keyword"} and props["installed_size"] == {"type": "long"}
    assert props["title"] == {"type": "text"} and props["released"] == {"type": "date"}
    assert props["maintainer"] == {"type": "text"}  # undeclared strings are text, as dynamic mapping does
    with pytest.raises(BadRequestError) as info:
        es.indices.create(index=INDEX)
    assert info.value.error == "resource_already_exists_exception"
    with pytest.raises(NotFoundError) as info:
        es.search(index="es-no-such-index", query={"match_all": {}})
    assert info.value.error == "index_not_found_exception"
    with pytest.raises(BadRequestError) as info:
        es.indices.create(index="es-bad", mappings={"properties": {"t": {"type": "text", "fields": {
            "raw": {"type": "keyword"}}}}})
    assert "multi-fields" in str(info.value.body["error"]["reason"])


# ------------------------------------------------------------------ documents and bulk
def test_bulk_actions_documents_and_count(es, http):
    index = "es-crud"
    es.indices.delete(index=index, ignore_unavailable=True)
    es.indices.create(index=index, mappings={"properties": {"tag": {"type": "keyword"}, "n": {"type": "integer"}}})
    actions = [{"_index": index, "_id": str(i), "_source": {"title": f"item number {i}", "tag": f"t{i % 3}", "n": i}}
               for i in range(20)]
    actions.append({"_op_type": "create", "_index": index, "_id": "c1", "_source": {"title": "created once"}})
    actions.append({"_op_type": "delete", "_index": index, "_id": "19"})
    assert helpers.bulk(es, actions, refresh="wait_for") == (22, [])
    assert es.count(index=index)["count"] == 20
    # errors are surfaced: create of an existing id (409), a wrong type (400), delete of a missing id (404)
    bad = [{"_op_type": "create", "_index": index, "_id": "c1", "_source": {"title": "again"}},
           {"_index": index, "_id": "typed", "_source": {"n": "not a number"}},
           {"_op_type": "delete", "_index": index, "_id": "nope"},
           {"_index": index, "_id": "fine", "_source": {"title": "still indexed"}}]
    ok, errors = helpers.bulk(es, bad, raise_on_error=False, refresh=True)
    assert ok == 1
    got = {next(iter(e.values()))["_id"]: next(iter(e.values())) for e in errors}
    assert got["c1"]["status"] == 409 and got["c1"]["error"]["type"] == "version_conflict_engine_exception"
    assert got["typed"]["status"] == 400 and "n" in got["typed"]["error"]["reason"]
    assert got["nope"]["status"] == 404 and got["nope"]["result"] == "not_found"
    with pytest.raises(helpers.BulkIndexError):
        helpers.bulk(es, bad[:1])
    # raw _bulk response shape, update as replacement and doc_as_upsert
    resp = es.bulk(operations=[{"update": {"_index": index, "_id": "fine"}}, {"doc": {"title": "replaced"}},
                               {"update": {"_index": index, "_id": "up"}}, {"doc": {"title": "u"}, "doc_as_upsert": True},
                               {"index": {"_index": index}}, {"title": "generated id"}])
    assert resp["errors"] is False
    results = [(next(iter(i)), next(iter(i.values()))["result"], next(iter(i.values()))["status"])
               for i in resp["items"]]
    assert results == [("update", "updated", 200), ("update", "created", 201), ("index", "created", 201)]
    generated = resp["items"][2]["index"]["_id"]
    assert es.get(index=index, id=generated)["_source"] == {"title": "generated id"}
    assert es.get(index=index, id="fine")["_source"] == {"title": "replaced"}
    # _doc: index (created / updated), get, delete
    r = es.index(index=index, id="d1", document={"title": "a doc", "n": 5})
    assert r["result"] == "created" and r["_id"] == "d1"
    assert es.index(index=index, id="d1", document={"title": "a doc again", "n": 6})["result"] == "updated"
    doc = es.get(index=index, id="d1")
    assert doc["found"] is True and doc["_source"] == {"title": "a doc again", "n": 6}
    assert es.get(index=index, id="d1", source_includes=["n"])["_source"] == {"n": 6}
    assert es.exists(index=index, id="d1")
    assert es.delete(index=index, id="d1")["result"] == "deleted"
    with pytest.raises(NotFoundError):
        es.get(index=index, id="d1")
    with pytest.raises(NotFoundError):
        es.delete(index=index, id="d1")
    assert es.count(index=index, query={"term": {"tag": "t1"}})["count"] == \
        len([i for i in range(19) if i % 3 == 1])
    # the same documents through raysearch's own API
    assert http.get(f"/indexes/{index}/documents/up").json()["document"] == {"id": "up", "title": "u"}
    es.indices.delete(index=index)
    assert not es.indices.exists(index=index)


def test_invalid_flags_and_op_type_are_400_naming_the_parameter(es, service):
    """Elasticsearch refuses a boolean URL parameter that is not true/false (illegal_argument_exception),
    and an op_type other than index/create: so does raysearch, before anything is written."""
    import httpx

    index, base = "es-flags", service.url + "/_elastic"
    es.indices.delete(index=index, ignore_unavailable=True)
    es.index(index=index, id="a", document={"title": "strict flags"}, refresh=True)
    with httpx.Client(base_url=base, timeout=120) as client:
        for method, path, param in [("GET", f"/{index}/_search?track_scores=maybe", "track_scores"),
                                    ("POST", f"/{index}/_search?rest_total_hits_as_int=1", "rest_total_hits_as_int"),
                                    ("GET", f"/{index}/_search?q=strict&ignore_unavailable=yes",
                                     "ignore_unavailable"),
                                    ("DELETE", f"/{index}?ignore_unavailable=nope", "ignore_unavailable"),
                                    ("DELETE", "/es-no-such-index?ignore_unavailable=TRUE", "ignore_unavailable"),
                                    ("PUT", f"/{index}/_doc/b?op_type=upsert", "op_type"),
                                    ("POST", f"/{index}/_doc?op_type=maybe", "op_type")]:
            r = client.request(method, path, json={"title": "must not be written"} if "_doc" in path else None)
            assert r.status_code == 400, (path, r.text)
            assert r.headers["x-elastic-product"] == "Elasticsearch"
            err = r.json()["error"]
            assert err["type"] == "illegal_argument_exception" == err["root_cause"][0]["type"], r.text
            assert param in err["reason"], (path, err)
        assert es.indices.exists(index=index)  # the refused DELETE did nothing
        assert es.count(index=index)["count"] == 1  # nor did the refused writes
        # the valid spellings still work
        r = client.get(f"/{index}/_search", params={"q": "strict", "track_scores": "true",
                                                    "rest_total_hits_as_int": ""})
        assert r.status_code == 200 and r.json()["hits"]["total"] == 1, r.text
        assert client.put(f"/{index}/_doc/c?op_type=CREATE", json={"title": "c"}).status_code == 201
        assert client.put(f"/{index}/_doc/c?op_type=create", json={"title": "c"}).status_code == 409
    es.indices.delete(index=index)


# ------------------------------------------------------------------ search
def test_match_against_the_oracle_and_raysearch(es, http, corpus):
    oracle = Oracle(corpus, Analyzer(STANDARD), field="title", types=TYPES)
    for text in ["window manager", "python library", "the game of ancient warfare", "Tiling"]:
        resp = es.search(index=INDEX, query={"match": {"title": text}}, size=10)
        scores = oracle.scores(text)
        top = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        assert resp["hits"]["total"] == {"value": len(scores), "relation": "eq"}
        assert_same_ranking([{"id": h["_id"], "score": h["_score"]} for h in resp["hits"]["hits"]], scores, top)
        assert resp["hits"]["max_score"] == (top[0][1] if top else None) or \
            math.isclose(resp["hits"]["max_score"], top[0][1], rel_tol=1e-9)
        native = _native(http, {"q": text, "fields": "title", "size": 10})
        _same_hits(resp["hits"]["hits"], native["hits"])
    # operator and
    resp = es.search(index=INDEX, query={"match": {"title": {"query": "window manager", "operator": "and"}}})
    native = _native(http, {"q": "window manager", "fields": "title", "operator": "and"})
    assert resp["hits"]["total"]["value"] == native["total"] > 0
    _same_hits(resp["hits"]["hits"], native["hits"])


def test_multi_match_phrase_and_query_string(es, http, corpus):
    resp = es.search(index=INDEX, query={"multi_match": {"query": "network daemon", "fields": ["title^2", "body"]}},
                     size=20)
    native = _native(http, {"q": "network daemon", "fields": "title^2,body", "size": 20})
    assert resp["hits"]["total"]["value"] == native["total"] > 0
    _same_hits(resp["hits"]["hits"], native["hits"])
    resp = es.search(index=INDEX, query={"match_phrase": {"body": "window manager"}}, size=50)
    native = _native(http, {"q": 'body:"window manager"', "size": 50})
    assert resp["hits"]["total"]["value"] == native["total"] > 0
    _same_hits(resp["hits"]["hits"], native["hits"])
    for query in ({"query_string": {"query": 'python +library -perl', "fields": ["title", "body"]}},
                  {"simple_query_string": {"query": 'python +library -perl', "fields": ["title", "body"]}}):
        resp = es.search(index=INDEX, query=query, size=10)
        native = _native(http, {"q": "python +library -perl", "fields": "title,body", "size": 10})
        _same_hits(resp["hits"]["hits"], native["hits"])
    resp = es.search(index=INDEX, q="title:python", size=5)
    assert resp["hits"]["hits"] and all("python" in h["_source"]["title"].lower() for h in resp["hits"]["hits"])


def test_bool_with_filters_against_the_oracles(es, http, corpus):
    bm25 = Oracle(corpus, Analyzer(STANDARD), field="body", types=TYPES)
    structured = StructuredOracle(corpus, TYPES)
    flt = [{"terms": {"section": ["libs", "devel", "python", "utils", "net"]}},
           {"range": {"installed_size": {"gte": 100, "lt": 5000}}}]
    for text in ["library", "command line tool"]:
        resp = es.search(index=INDEX, query={"bool": {"must": [{"match": {"body": text}}], "filter": flt,
                                                      "must_not": [{"term": {"priority": "extra"}}]}}, size=10)
        want_filter = {"and": flt + [{"not": {"term": {"priority": "extra"}}}]}
        scores = bm25.scores(text)
        ids = structured.select(want_filter, scores)
        ranked = sorted(((d, scores[d]) for d in ids), key=lambda kv: (-kv[1], kv[0]))
        assert resp["hits"]["total"]["value"] == len(ids) > 0
        assert_same_ranking([{"id": h["_id"], "score": h["_score"]} for h in resp["hits"]["hits"]],
                            {d: scores[d] for d in ids}, ranked[:10])
    # filters only: term on a boolean, range on a date, exists, ids
    resp = es.search(index=INDEX, query={"bool": {"filter": [{"term": {"essential": False}},
                                                             {"range": {"released": {"gte": "2022-01-01"}}},
                                                             {"exists": {"field": "rating"}}]}}, size=0)
    want = structured.select([{"term": {"essential": False}}, {"range": {"released": {"gte": "2022-01-01"}}},
                              {"exists": {"field": "rating"}}])
    assert resp["hits"]["total"]["value"] == len(want) > 0
    some = sorted(d["id"] for d in corpus[:300:37])
    resp = es.search(index=INDEX, query={"ids": {"values": some + ["no-such-id"]}}, size=100)
    assert sorted(h["_id"] for h in resp["hits"]["hits"]) == some
    # should: text or an exact keyword term
    resp = es.search(index=INDEX, query={"bool": {"should": [{"match": {"title": "daemon"}},
                                                             {"term": {"section": "games"}}]}}, size=0)
    want = {d["id"] for d in corpus if d.get("section") == "games"} | \
        set(Oracle(corpus, Analyzer(STANDARD), field="title", types=TYPES).scores("daemon"))
    assert resp["hits"]["total"]["value"] == len(want)
    assert es.count(index=INDEX, query={"term": {"section": "games"}})["count"] == \
        len([d for d in corpus if d.get("section") == "games"])
    # must: a keyword term (it scores, as in Elasticsearch) + optional should
    resp = es.search(index=INDEX, query={"bool": {"must": [{"term": {"section": "libs"}}],
                                                  "should": [{"match": {"title": "python"}}]}}, size=20)
    native = _native(http, {"q": '+section:"libs" title:python', "size": 20})
    assert resp["hits"]["total"]["value"] == native["total"] == len([d for d in corpus if d.get("section") == "libs"])
    _same_hits(resp["hits"]["hits"], native["hits"])


def test_sort_search_after_and_source(es, corpus):
    structured = StructuredOracle(corpus, TYPES)
    query = {"range": {"installed_size": {"gte": 50}}}
    sort = [{"installed_size": {"order": "desc"}}, {"section": "asc"}]
    want = [doc_id for doc_id, _ in structured.ordered(structured.select({"range": {"installed_size": {"gte": 50}}}),
                                                       [{"installed_size": "desc"}, {"section": "asc"}])]
    seen, after = [], None
    while True:
        kwargs = {"search_after": after} if after else {}
        resp = es.search(index=INDEX, query=query, sort=sort, size=97, source=["title", "installed_size"],
                         **kwargs)
        hits = resp["hits"]["hits"]
        if not hits:
            break
        for h in hits:
            assert set(h["_source"]) <= {"title", "installed_size"} and h["_score"] is None
            assert h["sort"][0] == h["_source"]["installed_size"]
        seen += [h["_id"] for h in hits]
        after = hits[-1]["sort"]
    assert seen == want
    resp = es.search(index=INDEX, query={"match_all": {}}, size=3, source=False, sort=["size:asc"])
    assert all("_source" not in h for h in resp["hits"]["hits"])
    resp = es.search(index=INDEX, size=2, source_excludes=["body", "maintainer"])
    assert all("body" not in h["_source"] and "title" in h["_source"] for h in resp["hits"]["hits"])


def test_aggregations_against_the_oracle(es, corpus):
    structured = StructuredOracle(corpus, TYPES)
    flt = {"term": {"priority": "optional"}}
    ids = structured.select(flt)
    want = structured.facets(ids, {"s": {"terms": {"field": "section", "size": 5}},
                                   "st": {"stats": {"field": "installed_size"}},
                                   "h": {"histogram": {"field": "rating", "interval": 2.5}}})
    resp = es.search(index=INDEX, query={"bool": {"filter": flt}}, size=0,
                     aggs={"s": {"terms": {"field": "section", "size": 5}}, "st": {"stats": {"field": "installed_size"}},
                           "h": {"histogram": {"field": "rating", "interval": 2.5}},
                           "mx": {"max": {"field": "installed_size"}}, "b": {"terms": {"field": "essential"}}})
    aggs = resp["aggregations"]
    assert resp["hits"]["total"]["value"] == len(ids)
    assert aggs["s"]["buckets"] == [{"key": b["key"], "doc_count": b["count"]} for b in want["s"]["buckets"]]
    assert aggs["s"]["sum_other_doc_count"] == want["s"]["other"] and aggs["s"]["doc_count_error_upper_bound"] == 0
    st = aggs["st"]
    assert st["count"] == want["st"]["count"] and st["min"] == want["st"]["min"] and st["max"] == want["st"]["max"]
    assert math.isclose(st["sum"], want["st"]["sum"]) and math.isclose(st["avg"], want["st"]["avg"])
    assert aggs["mx"] == {"value": want["st"]["max"]}
    assert [(b["key"], b["doc_count"]) for b in aggs["h"]["buckets"]] == \
        [(b["key"], b["count"]) for b in want["h"]["buckets"]]
    assert {b["key_as_string"] for b in aggs["b"]["buckets"]} <= {"true", "false"}


def test_unsupported_features_answer_400_in_elasticsearch_shape(es, corpus):
    for query, named in [({"fuzzy": {"title": "pyhton"}}, "fuzzy"),
                         ({"bool": {"filter": [{"term": {"section": "libs"}}], "should": [{"match": {"title": "x"}}]}},
                          "optional should"),
                         ({"query_string": {"query": "python AND (perl OR ruby)"}}, "AND/OR/NOT")]:
        with pytest.raises(BadRequestError) as info:
            es.search(index=INDEX, query=query)
        body = info.value.body
        assert body["status"] == 400 and body["error"]["root_cause"][0]["reason"] == body["error"]["reason"]
        assert named in body["error"]["reason"]
    with pytest.raises(BadRequestError):
        es.search(index=INDEX, aggs={"d": {"date_histogram": {"field": "released", "calendar_interval": "month"}}})
