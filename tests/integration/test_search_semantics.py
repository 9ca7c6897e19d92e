"""Search semantics over HTTP: shard count does not change results, query syntax,
field boosts, settings, and stored data that looks like operators."""

from __future__ import annotations

from tests.conftest import load_jsonl, wait_operation


def _index(http, name, docs, settings=None):
    if settings is not None:
        assert http.put(f"/indexes/{name}", json=settings).status_code == 201
    op = wait_operation(http, http.post(f"/bulk-indexing/{name}", json=docs).json()["operation_id"])
    assert op["status"] == "completed", op


def test_results_do_not_depend_on_the_number_of_shards(http, corpora):
    docs = load_jsonl(corpora / "cisi" / "docs.jsonl.gz", limit=700)
    _index(http, "one-shard", docs, {"shards": 1})
    _index(http, "four-shards", docs, {"shards": 4})
    assert http.get("/indexes/one-shard").json()["shards"] == 1
    for q in ["information retrieval", '"library science"', "+index -computer", "catalog* system", "title:library"]:
        a = http.get("/indexes/one-shard/search", params={"q": q, "size": 20}).json()
        b = http.get("/indexes/four-shards/search", params={"q": q, "size": 20}).json()
        assert a["total"] == b["total"] > 0, q
        assert [(h["id"], h["score"]) for h in a["hits"]] == [(h["id"], h["score"]) for h in b["hits"]], q


def test_query_syntax_over_http(http):
    docs = [
        {"id": "1", "title": "Rust search engine", "body": "fast full text search"},
        {"id": "2", "title": "Python search", "body": "search engines in python"},
        {"id": "3", "title": "Cooking", "body": "engine oil is not food"},
    ]
    _index(http, "syntax", docs)

    def ids(q, **kw):
        return [h["id"] for h in http.get("/indexes/syntax/search", params={"q": q, **kw}).json()["hits"]]

    assert set(ids("search")) == {"1", "2"}
    assert set(ids("search engine", operator="and")) == {"1", "2"}
    assert ids("+engine -search") == ["3"]
    assert ids('"full text"') == ["1"]
    assert ids("title:cooking") == ["3"]
    assert set(ids("pyth*")) == {"2"}
    assert ids('what: "unclosed quote engine') != []  # lenient: read as words
    assert set(ids("python", fields="title^3,body")) == {"2"}
    assert http.get("/indexes/syntax/search", params={"q": "a*"}).status_code in (200, 400)
    r = http.get("/indexes/syntax/search", params={"q": "search", "highlight": "true"}).json()
    assert all("highlight" in h for h in r["hits"])


def test_index_settings_are_persisted_and_conflicts_are_409(http):
    settings = {"shards": 2, "analyzer": {"stemming": None, "stopwords": None, "ascii_folding": False},
                "fields": {"title": {"boost": 2.0}, "body": {"boost": 1.0}}}
    assert http.put("/indexes/settings-test", json=settings).status_code == 201
    assert http.put("/indexes/settings-test", json=settings).status_code == 409
    info = http.get("/indexes/settings-test").json()
    assert info["shards"] == 2 and info["settings"]["fields"]["title"]["boost"] == 2.0
    bad = http.put("/indexes/bad-settings", json={"shards": 0})
    assert bad.status_code == 400 and "shards" in bad.json()["error"]["reason"]
    _index(http, "settings-test", [{"id": "a", "title": "Running", "body": "the runners"}])
    # no stemming, no stop words: 'running' does not match 'run', 'the' is searchable
    assert http.get("/indexes/settings-test/search", params={"q": "run"}).json()["total"] == 0
    assert http.get("/indexes/settings-test/search", params={"q": "the"}).json()["total"] == 1


def test_operator_like_values_are_plain_data(http):
    docs = [{"id": "inj", "title": "$where sleep(1000)", "meta": {"query": "{\"$gt\": 1}"}, "n": {"nested": [1, 2]}}]
    _index(http, "injection", docs)
    assert http.get("/indexes/injection/documents/inj").json()["document"] == docs[0]
    hits = http.get("/indexes/injection/search", params={"q": "where sleep"}).json()["hits"]
    assert [h["id"] for h in hits] == ["inj"] and hits[0]["document"] == docs[0]
    assert http.post("/indexes/injection/verify").json()["ok"]


def test_in_cluster_api_matches_http(http, service):
    import raysearch

    _index(http, "incluster", [{"id": "a", "title": "actor model search"}, {"id": "b", "title": "search"}])
    rs = raysearch.connect()
    direct = rs.search("incluster", "actor search")
    over_http = http.get("/indexes/incluster/search", params={"q": "actor search"}).json()
    assert [(h["id"], h["score"]) for h in direct["hits"]] == [(h["id"], h["score"]) for h in over_http["hits"]]
    assert rs.get("incluster", "a")["document"]["title"] == "actor model search"
