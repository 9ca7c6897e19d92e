"""Typed fields, filters, sorting, cursors and facets (docs/api.md) on the real service,
against a brute-force oracle (tests/structured_oracle.py), on a real structured corpus:
the Debian sample's package fields (section, priority, sizes, essential), plus a
keyword list, a date and a float derived from each package so every type is covered.
1 and 4 shards must give identical answers; so must a shard after kill -9 and a
shard rebuilt from MongoDB alone, and after a restart of the whole Ray side."""

from __future__ import annotations

import json
import math
import os
import signal
import time
import zlib

import pytest
import ray

from raysearch.actors import registry
from raysearch.analysis.analyzer import Analyzer
from raysearch.config import NAMESPACE
from tests.conftest import debian_docs, wait_operation
from tests.oracle import Oracle, assert_same_ranking
from tests.structured_oracle import StructuredOracle

N_DOCS = 3000
TYPES = {"section": "keyword", "priority": "keyword", "tags": "keyword", "installed_size": "integer",
         "size": "integer", "essential": "boolean", "released": "date", "rating": "float"}
INDEXES = {"structured1": 1, "structured4": 4}


def structured_docs() -> list[dict]:
    docs = []
    for doc in debian_docs(0, N_DOCS):
        h = zlib.crc32(doc["id"].encode())
        if doc.get("architecture"):
            doc["tags"] = sorted({doc["architecture"], doc.get("priority", "optional"), f"h{h % 7}"})
        day = h % 3650
        ms = (1_500_000_000 + day * 86_400) * 1000
        doc["released"] = ms if h % 3 == 0 else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))
        if h % 5:
            doc["rating"] = round((h % 1000) / 100, 2)
        docs.append(doc)
    return docs


@pytest.fixture(scope="module")
def structured(http):
    docs = structured_docs()
    bad = [{"id": "bad-int", "title": "x", "installed_size": "big"},
           {"id": "bad-bool", "title": "x", "essential": "yes"},
           {"id": "bad-date", "title": "x", "released": "last tuesday"}]
    for index, shards in INDEXES.items():
        http.delete(f"/indexes/{index}")
        r = http.put(f"/indexes/{index}", json={"shards": shards, "fields": {f: {"type": t} for f, t in TYPES.items()}})
        assert r.status_code == 201, r.text
        r = http.post(f"/bulk-indexing/{index}", json=docs[:10] + bad + docs[10:])
        assert r.status_code == 202, r.text
        accepted = r.json()
        op = wait_operation(http, accepted["operation_id"])
        assert op["status"] == "partially_completed" and op["documents"]["indexed"] == N_DOCS, op
    return docs, accepted


def _search(http, index, body):
    r = http.post(f"/indexes/{index}/search", json=body)
    assert r.status_code == 200, (body, r.text)
    return r.json()


def _both(http, body):
    """The answer of the 1-shard and the 4-shard index, which must be identical (but for took_ms)."""
    answers = []
    for index in INDEXES:
        out = _search(http, index, body)
        out.pop("took_ms")
        answers.append(out)
    assert answers[0] == answers[1], body
    return answers[0]


def _oracle(docs):
    return StructuredOracle(docs, TYPES)


def _facets_equal(got: dict, want: dict):
    assert got.keys() == want.keys()
    for name in want:
        g, w = got[name], want[name]
        if "sum" in w:
            assert g["count"] == w["count"] and g["min"] == w["min"] and g["max"] == w["max"], (name, g, w)
            assert math.isclose(g["sum"], w["sum"], rel_tol=1e-9) and \
                (g["avg"] is None if w["avg"] is None else math.isclose(g["avg"], w["avg"], rel_tol=1e-9)), (name, g, w)
        else:
            assert g == w, (name, g, w)


def test_wrong_types_are_per_item_errors_naming_the_field(structured):
    _, accepted = structured
    reasons = {e["id"]: e["reason"] for e in accepted["errors"]}
    assert set(reasons) == {"bad-int", "bad-bool", "bad-date"}
    assert "installed_size" in reasons["bad-int"] and "essential" in reasons["bad-bool"] \
        and "released" in reasons["bad-date"]
    assert accepted["documents"] == N_DOCS


FILTERS = [
    {"term": {"section": "games"}},
    {"terms": {"priority": ["required", "important", "standard"]}},
    {"range": {"installed_size": {"gte": 1000, "lt": 5000}}},
    {"range": {"released": {"gte": "2020-01-01", "lte": 1700000000000}}},
    {"range": {"rating": {"gt": 2.5}}},
    {"range": {"section": {"gte": "libs", "lt": "net"}}},
    {"exists": {"field": "rating"}},
    {"not": {"exists": {"field": "installed_size"}}},
    {"term": {"essential": True}},
    {"term": {"tags": "all"}},
    {"or": [{"term": {"section": "python"}}, {"and": [{"term": {"tags": "h3"}}, {"range": {"size": {"lt": 20000}}}]}]},
    [{"term": {"section": "utils"}}, {"not": {"term": {"tags": "amd64"}}}],
]
SORTS = [
    [{"installed_size": "desc"}],
    [{"section": "asc"}, {"size": "desc"}],
    [{"released": "asc"}],
    [{"rating": "desc"}, {"section": "desc"}],
    [{"tags": "asc"}, {"essential": "desc"}],
]
FACETS = {
    "sections": {"terms": {"field": "section", "size": 5}},
    "tags": {"terms": {"field": "tags", "size": 100}},
    "essential": {"terms": {"field": "essential"}},
    "sizes": {"stats": {"field": "installed_size"}},
    "ratings": {"histogram": {"field": "rating", "interval": 2.5}},
    "years": {"histogram": {"field": "released", "interval": 365 * 86_400_000}},
}


def _check_filter(http, oracle: StructuredOracle, flt):
    """A filter's total, first page (sorted by size) and facets: 1 and 4 shards alike, equal to the oracle."""
    want_ids = oracle.select(flt)
    out = _both(http, {"filter": flt, "size": 20, "facets": FACETS, "sort": [{"size": "asc"}]})
    assert out["total"] == len(want_ids), flt
    assert [h["id"] for h in out["hits"]] == [d for d, _ in oracle.ordered(want_ids, [{"size": "asc"}])[:20]]
    _facets_equal(out["facets"], oracle.facets(want_ids, FACETS))


def _page_through(http, body: dict, page_size: int) -> list[dict]:
    """Every hit of a sorted request, page after page with search_after (1 and 4 shards alike)."""
    hits, after = [], None
    while True:
        page_body = {**body, "size": page_size}
        if after is not None:
            page_body["search_after"] = after
        page = _both(http, page_body)["hits"]
        if not page:
            return hits
        hits += page
        after = page[-1]["sort"]
        assert page[-1]["sort"][-1] == page[-1]["id"]  # ties by id: the id closes every sort key


def _check_sorted_pages(http, oracle: StructuredOracle, body: dict, want_ids: list[str], page_size: int = 97):
    """Paging through a sorted request gives every match once, in the oracle's order, with its sort values."""
    want = oracle.ordered(want_ids, body["sort"])
    got = [(h["id"], h["sort"][:-1]) for h in _page_through(http, body, page_size)]
    assert [d for d, _ in got] == [d for d, _ in want], body
    for (_, values), (_, expected) in zip(got, want):
        assert values == expected, body


SORT_FILTER = {"range": {"installed_size": {"lt": 20000}}}


@pytest.mark.parametrize("flt", FILTERS, ids=[json.dumps(f)[:40] for f in FILTERS])
def test_filters_with_facets_match_the_oracle(http, structured, flt):
    docs, _ = structured
    _check_filter(http, _oracle(docs), flt)


@pytest.mark.parametrize("sort", SORTS, ids=[json.dumps(s)[:40] for s in SORTS])
def test_sorts_and_search_after_page_through_every_match(http, structured, sort):
    docs, _ = structured
    oracle = _oracle(docs)
    _check_sorted_pages(http, oracle, {"filter": SORT_FILTER, "sort": sort}, oracle.select(SORT_FILTER))


def test_text_query_with_filter_sort_and_cursor(http, structured):
    docs, _ = structured
    analyzer = Analyzer()
    oracle = Oracle([d for d in docs], analyzer, types=TYPES)
    structured_oracle = _oracle(docs)
    flt = {"terms": {"section": ["libs", "devel", "python", "utils"]}}
    for q in ["library", "python module", "graphical user interface tool"]:
        scores = oracle.scores(q)
        ids = structured_oracle.select(flt, scores)
        ranked = sorted(((d, scores[d]) for d in ids), key=lambda kv: (-kv[1], kv[0]))
        out = _both(http, {"q": q, "filter": flt, "size": 10})
        assert out["total"] == len(ids), q
        assert_same_ranking(out["hits"], {d: scores[d] for d in ids}, ranked[:10])
        # _score pages with search_after: every match once, in score order
        seen, after = [], None
        while True:
            body = {"q": q, "filter": flt, "size": 25, "sort": ["_score"]}
            if after:
                body["search_after"] = after
            page = _both(http, body)["hits"]
            if not page:
                break
            seen += [h["id"] for h in page]
            after = page[-1]["sort"]
        assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen)), q


QUERY_LANGUAGE = {  # q -> the same selection as a filter (the oracle's)
    "+section:games +installed_size:[1000 TO 5000]":
        [{"term": {"section": "games"}}, {"range": {"installed_size": {"gte": 1000, "lte": 5000}}}],
    "+section:games +installed_size:>=20000": [{"term": {"section": "games"}},
                                              {"range": {"installed_size": {"gte": 20000}}}],
    "+tags:all -essential:true -section:libs": [{"term": {"tags": "all"}}, {"not": {"term": {"essential": True}}},
                                                {"not": {"term": {"section": "libs"}}}],
    "+rating:{2.5 TO *} +section:python": [{"range": {"rating": {"gt": 2.5}}}, {"term": {"section": "python"}}],
    "+released:[2020-01-01 TO 2021-06-30} +tags:h3": [{"range": {"released": {"gte": "2020-01-01",
                                                                              "lt": "2021-06-30"}}},
                                                      {"term": {"tags": "h3"}}],
    "+size:<20000 +priority:optional -tags:amd64": [{"range": {"size": {"lt": 20000}}},
                                                    {"term": {"priority": "optional"}},
                                                    {"not": {"term": {"tags": "amd64"}}}],
}
# a range whose bounds do not fit the field's type is plain words: the same answer as these words alone
LENIENT = {
    "installed_size:[big TO small]": "big TO small",
    "installed_size:>=lots": "lots",
    "released:[recent TO ancient]": "recent TO ancient",
    "+rating:{high TO *} library": "+high library",
}


@pytest.mark.parametrize("q", QUERY_LANGUAGE, ids=list(QUERY_LANGUAGE))
def test_query_language_keyword_terms_and_ranges(http, structured, q):
    docs, _ = structured
    oracle = _oracle(docs)
    want = oracle.select(QUERY_LANGUAGE[q])
    assert want, f"{q}: the oracle selects nothing, the test would prove nothing"
    out = _both(http, {"q": q, "size": len(want) + 10})
    assert out["total"] == len(want), q
    assert sorted(h["id"] for h in out["hits"]) == sorted(want), q
    scores = [h["score"] for h in out["hits"]]
    assert scores == sorted(scores, reverse=True), q
    for sort in ([{"installed_size": "desc"}, {"section": "asc"}], [{"released": "asc"}], SORTS[4]):
        _check_sorted_pages(http, oracle, {"q": q, "sort": sort}, want, page_size=max(7, len(want) // 4 + 1))


@pytest.mark.parametrize("q", LENIENT, ids=list(LENIENT))
def test_query_language_malformed_range_is_plain_words(http, structured, q):
    docs, _ = structured
    words = LENIENT[q]
    got = _both(http, {"q": q, "size": 50})
    plain = _both(http, {"q": words, "size": 50})
    assert got == plain, q
    assert got["total"] > 0, f"{words!r} matches nothing: the test would prove nothing"
    text_oracle = Oracle(docs, Analyzer(), types=TYPES)
    if not words.startswith("+"):  # OR of the words: the text oracle's BM25
        scores = text_oracle.scores(words)
        assert got["total"] == len(scores), q
        assert_same_ranking(got["hits"], scores, sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:50])
    r = http.get("/indexes/structured4/search", params={"q": q, "size": 50})  # GET reads it the same way
    assert r.status_code == 200, r.text
    answer = r.json()
    answer.pop("took_ms")
    assert answer == plain, q


def test_get_search_takes_url_encoded_json(http, structured):
    params = {"filter": json.dumps({"term": {"section": "games"}}), "sort": json.dumps([{"installed_size": "desc"}]),
              "facets": json.dumps({"p": {"terms": {"field": "priority"}}}), "size": "3"}
    r = http.get("/indexes/structured4/search", params=params)
    assert r.status_code == 200, r.text
    post = _search(http, "structured4", {"filter": {"term": {"section": "games"}}, "sort": [{"installed_size": "desc"}],
                                          "facets": {"p": {"terms": {"field": "priority"}}}, "size": 3})
    assert r.json()["hits"] == post["hits"] and r.json()["facets"] == post["facets"]


@pytest.mark.parametrize("body,named", [
    ({"filter": {"term": {"title": "x"}}}, "title"),  # a text field
    ({"filter": {"term": {"nosuchfield": "x"}}}, "nosuchfield"),
    ({"filter": {"prefix": {"section": "x"}}}, "prefix"),  # unknown operator
    ({"filter": {"range": {"installed_size": {"between": 3}}}}, "between"),
    ({"filter": {"term": {"installed_size": "many"}}}, "installed_size"),
    ({"sort": [{"body": "asc"}]}, "body"),
    ({"sort": [{"section": "up"}]}, "up"),
    ({"facets": {"f": {"terms": {"field": "title"}}}}, "title"),
    ({"facets": {"f": {"cardinality": {"field": "section"}}}}, "cardinality"),
    ({"facets": {"f": {"histogram": {"field": "size", "interval": 0}}}}, "interval"),
    ({"sort": [{"size": "asc"}], "search_after": [1, 2, 3, 4]}, "search_after"),
])
def test_bad_structured_requests_are_400_naming_the_problem(http, structured, body, named):
    r = http.post("/indexes/structured4/search", json=body)
    assert r.status_code == 400, r.text
    assert named in r.json()["error"]["reason"], r.text


def test_fields_declared_later_and_types_never_change(http):
    index = "latefields"
    http.delete(f"/indexes/{index}")
    assert http.put(f"/indexes/{index}").status_code == 201
    r = http.put(f"/indexes/{index}/fields", json={"year": {"type": "integer"}, "lang": {"type": "keyword"}})
    assert r.status_code == 200, r.text
    assert r.json()["settings"]["fields"]["year"]["type"] == "integer"
    r = http.put(f"/indexes/{index}/fields", json={"year": {"type": "keyword"}})
    assert r.status_code == 400 and "year" in r.json()["error"]["reason"]
    assert http.put(f"/indexes/{index}/fields", json={"x": {"type": "money"}}).status_code == 400
    assert http.put("/indexes/nosuchindex/fields", json={"x": {"type": "integer"}}).status_code == 404
    docs = [{"id": str(i), "title": f"book {i}", "year": 1990 + i, "lang": ["en", "fr"][i % 2]} for i in range(10)]
    op = wait_operation(http, http.post(f"/bulk-indexing/{index}", json=docs).json()["operation_id"])
    assert op["status"] == "completed"
    out = _search(http, index, {"q": "book", "filter": {"range": {"year": {"gte": 1995}}}, "sort": [{"year": "desc"}],
                                "facets": {"lang": {"terms": {"field": "lang"}}}})
    assert [h["id"] for h in out["hits"]] == ["9", "8", "7", "6", "5"]
    assert out["facets"]["lang"] == {"buckets": [{"key": "fr", "count": 3}, {"key": "en", "count": 2}], "other": 0}
    http.delete(f"/indexes/{index}")


def _snapshot(http) -> list:
    bodies = [{"filter": FILTERS[10], "sort": SORTS[1], "size": 30, "facets": FACETS},
              {"q": "library", "filter": FILTERS[2], "size": 10, "facets": FACETS},
              {"sort": SORTS[3], "size": 50}]
    out = []
    for body in bodies:
        answer = _search(http, "structured4", body)
        answer.pop("took_ms")
        out.append(answer)
    return out


def test_answers_survive_kill9_of_a_shard_and_a_rebuild_from_mongodb(http, structured):
    before = _snapshot(http)
    assert before == [_both(http, b) for b in
                      [{"filter": FILTERS[10], "sort": SORTS[1], "size": 30, "facets": FACETS},
                       {"q": "library", "filter": FILTERS[2], "size": 10, "facets": FACETS},
                       {"sort": SORTS[3], "size": 50}]]
    shard = ray.get_actor(registry.shard_name("structured4", 0), namespace=NAMESPACE)
    pid = ray.get(shard.pid.remote(), timeout=60)
    os.kill(pid, signal.SIGKILL)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if ray.get(shard.pid.remote(), timeout=30) != pid:
                break
        except Exception:
            time.sleep(0.5)
    assert _snapshot(http) == before  # reopened from its RocksDB
    r = http.post("/indexes/structured4/restore", params={"shard": 1})
    assert r.status_code == 200, r.text
    assert _snapshot(http) == before  # rebuilt from MongoDB alone
    assert http.post("/indexes/structured4/verify").json()["ok"]


def test_answers_survive_a_restart_of_the_ray_side(http, service, structured):
    """Serve and every actor stopped (MongoDB and the data directory stay), then started again
    (as in test_faults.py / test_debian_8000.py; start() waits for /readyz): every filter with
    its facets, every sort paged with search_after, still equal the oracle on 1 and 4 shards."""
    docs, _ = structured
    before = _snapshot(http)
    service.stop_ray()
    assert not ray.is_initialized()
    service.start()
    for index in INDEXES:
        assert http.get(f"/indexes/{index}").json()["documents"] == N_DOCS, index
    assert _snapshot(http) == before
    oracle = _oracle(docs)
    # Every other filter and sort (each kind of operator and field type is among them): the full
    # lists ran before the restart, and after it the columns are either all there or not.
    for flt in FILTERS[::2]:
        _check_filter(http, oracle, flt)
    for sort in SORTS[::2]:
        _check_sorted_pages(http, oracle, {"filter": SORT_FILTER, "sort": sort}, oracle.select(SORT_FILTER))
    for index in INDEXES:
        report = http.post(f"/indexes/{index}/verify").json()
        assert report["ok"], (index, report["mismatches"][:5])
