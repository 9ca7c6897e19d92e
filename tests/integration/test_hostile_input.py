"""Hostile input on the real service: every body and parameter decoder refuses with a 400
naming the problem (never a 5xx); index settings are validated before they are stored;
a corrupt index record in MongoDB is isolated to that index."""

from __future__ import annotations

import time

import pytest
from pymongo import MongoClient

from tests.conftest import wait_operation
from tests.unit.test_decoding import HOSTILE_BODIES

INDEX = "hostile"


@pytest.fixture(scope="module")
def known(http):
    docs = [{"id": f"k{i}", "title": f"known document number {i}"} for i in range(5)]
    op = wait_operation(http, http.post(f"/bulk-indexing/{INDEX}", json=docs).json()["operation_id"])
    assert op["status"] == "completed", op
    return docs


def _assert_400(r, words: str, type_: str | None = None):
    assert r.status_code == 400, (r.status_code, r.text[:500])
    error = r.json()["error"]
    assert words.lower() in error["reason"].lower(), error
    if type_:
        assert error["type"] == type_, error


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_every_body_endpoint_refuses_hostile_json(http, known, name):
    body, words = HOSTILE_BODIES[name]
    json_type = {"Content-Type": "application/json"}
    _assert_400(http.post(f"/bulk-indexing/{INDEX}", content=body, headers=json_type), words, "invalid_json")
    _assert_400(http.put(f"/indexes/{INDEX}/documents/h1", content=body, headers=json_type), words, "invalid_json")
    _assert_400(http.put("/indexes/hostile-settings", content=body, headers=json_type), words, "invalid_json")
    _assert_400(http.post(f"/indexes/{INDEX}/search", content=body, headers=json_type), words, "invalid_json")
    # NDJSON: the line is reported as that document's error (or the whole body is 400 when no line reads)
    nd = b'{"id": "nd-ok", "title": "fine"}\n' + body.replace(b"\n", b" ") + b"\n"
    r = http.post(f"/bulk-indexing/{INDEX}-nd", content=nd, headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 202, r.text[:500]
    assert [e["position"] for e in r.json()["errors"]] == [1] and words in r.json()["errors"][0]["reason"]
    assert http.get("/indexes/hostile-settings").status_code == 404


def test_bodies_of_the_wrong_shape(http, known):
    _assert_400(http.put("/indexes/hostile-settings", content=b"[1]"), "must be a JSON object")
    _assert_400(http.post(f"/indexes/{INDEX}/search", content=b'"q"'), "must be a JSON object")
    _assert_400(http.put(f"/indexes/{INDEX}/documents/x", content=b"null"), "must be a JSON object")
    _assert_400(http.put(f"/indexes/{INDEX}/documents/x", content=b""), "empty")
    _assert_400(http.post(f"/indexes/{INDEX}/search", json={"q": "a", "size": 2**70}), "out of range")
    _assert_400(http.post(f"/indexes/{INDEX}/search", json={"q": "a", "size": 2**62}), "over the limit")
    _assert_400(http.post(f"/indexes/{INDEX}/search", json={"q": ["a"]}), "q")


def test_control_characters_in_ids_and_field_names(http, known):
    docs = [{"id": "bell\x07", "title": "x"}, {"id": "ok-ctl", "ti\x1btle": "x"}, {"id": "ok-c1", "a\x85": "x"},
            {"id": "fine-ctl", "title": "values may hold \x01 control characters"}]
    r = http.post(f"/bulk-indexing/{INDEX}", json=docs)
    assert r.status_code == 202, r.text
    reasons = {e["position"]: e["reason"] for e in r.json()["errors"]}
    assert set(reasons) == {0, 1, 2} and all("control" in v for v in reasons.values()), reasons
    _assert_400(http.put(f"/indexes/{INDEX}/documents/a%07b", json={"title": "x"}), "control")
    wait_operation(http, r.json()["operation_id"])
    assert http.get(f"/indexes/{INDEX}/documents/fine-ctl").status_code == 200


@pytest.mark.parametrize("params, name", [
    ({"q": "a", "highlight": "yes"}, "highlight"),
    ({"q": "a", "highlight": "2"}, "highlight"),
    ({"q": "a", "operator": "xor"}, "operator"),
    ({"q": "a", "size": "ten"}, "size"),
    ({"q": "a", "size": "9" * 5000}, "size"),
    ({"q": "a", "from": "1.5"}, "from"),
    ({"q": "a", "from": "-1"}, "from"),
    ({"q": "a", "nonsense": "1"}, "nonsense"),
    ([("q", "a"), ("size", "1"), ("size", "2")], "size"),
])
def test_query_parameters_are_strict(http, known, params, name):
    _assert_400(http.get(f"/indexes/{INDEX}/search", params=params), name)


def test_valid_query_parameters(http, known):
    for value in ("true", "TRUE", "1", "false", "0"):
        r = http.get(f"/indexes/{INDEX}/search", params={"q": "known", "highlight": value, "operator": "AND"})
        assert r.status_code == 200, r.text
        assert ("highlight" in r.json()["hits"][0]) == (value.lower() in ("true", "1"))
    _assert_400(http.post(f"/indexes/{INDEX}/restore", params={"shard": "x"}), "shard")


def test_unknown_stemmer_is_400_and_leaves_nothing_behind(http):
    r = http.put("/indexes/klingon", json={"analyzer": {"stemming": "klingon"}})
    _assert_400(r, "analyzer.stemming")
    assert "klingon" in r.json()["error"]["reason"]
    _assert_400(http.put("/indexes/klingon", json={"analyzer": {"stopwords": "elvish"}}), "stopwords")
    _assert_400(http.put("/indexes/klingon", json={"analyzer": {"stemmer": "english"}}), "stemmer")
    _assert_400(http.put("/indexes/klingon", json={"shards": 0}), "shards")
    _assert_400(http.put("/indexes/klingon", json={"fields": {"title": {"boost": -1}}}), "boost")
    assert http.get("/indexes/klingon").status_code == 404
    assert "klingon" not in {i["index"] for i in http.get("/indexes").json()["indexes"]}
    assert http.get("/readyz").status_code == 200
    r = http.put("/indexes/klingon", json={"analyzer": {"stemming": "french"}})
    assert r.status_code == 201 and r.json()["settings"]["analyzer"]["stemming"] == "french"
    assert http.delete("/indexes/klingon").status_code == 200


def test_webhook_is_checked_at_intake(http):
    doc = [{"id": "w1", "title": "x"}]
    for url, words in [("ftp://127.0.0.1/x", "scheme"), ("http://me:pw@127.0.0.1/x", "credentials"),
                       ("http://169.254.169.254/latest/meta-data", "not allowed"), ("gopher://x", "scheme"),
                       (42, "URL")]:
        _assert_400(http.post("/bulk-indexing/hooks-refused", json={"documents": doc, "webhook": url}), words)
    assert http.get("/indexes/hooks-refused").status_code == 404


def _wait_ready(http, ok: bool, timeout_s: float = 60):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        r = http.get("/readyz")
        if (r.status_code == 200) == ok:
            return r
        time.sleep(0.5)
    raise AssertionError(f"/readyz did not become {'ready' if ok else 'unready'}: {r.text}")


def test_corrupt_index_record_is_isolated(http, service):
    client = MongoClient(service.settings.mongo_uri)
    indexes = client["raysearch"]["indexes"]
    corrupt = {
        "corrupt-stemmer": {"settings": {"analyzer": {"stemming": "klingon"}}, "shards": 2},
        "corrupt-shards": {"settings": {}, "shards": "many"},
        "corrupt-settings": {"settings": "garbage"},
    }
    try:
        for name, record in corrupt.items():
            indexes.insert_one({"_id": name, **record})
        r = _wait_ready(http, ok=False)
        assert r.status_code == 503
        for name in corrupt:
            assert name in r.json()["reason"], r.text
        # every other index keeps indexing, persisting and answering
        docs = [{"id": f"c{i}", "title": f"isolated from corruption {i}"} for i in range(20)]
        op = wait_operation(http, http.post("/bulk-indexing/healthy", json=docs).json()["operation_id"], 120)
        assert op["status"] == "completed", op
        assert http.get("/indexes/healthy/search", params={"q": "corruption"}).json()["total"] == 20
        assert http.post("/indexes/healthy/verify").json()["ok"]
        stats = http.get("/stats")
        assert stats.status_code == 200 and stats.json()["indexes"]["healthy"]["documents"] == 20
        assert stats.json()["indexes"]["corrupt-shards"]["error"]["type"] == "index_corrupt"
        listed = {i["index"]: i for i in http.get("/indexes").json()["indexes"]}
        assert listed["healthy"]["documents"] == 20 and "error" in listed["corrupt-stemmer"]
        # requests to a corrupt index: a clear 503 naming it
        for name in corrupt:
            for r in (http.get(f"/indexes/{name}/search", params={"q": "x"}), http.get(f"/indexes/{name}"),
                      http.post(f"/bulk-indexing/{name}", json=[{"id": "a", "title": "b"}]),
                      http.put(f"/indexes/{name}/documents/a", json={"title": "b"})):
                assert r.status_code == 503, r.text
                assert r.json()["error"]["type"] == "index_corrupt" and name in r.json()["error"]["reason"]
        assert http.get("/healthz").status_code == 200
        for name in corrupt:
            assert http.delete(f"/indexes/{name}").status_code == 200, name
            assert http.get(f"/indexes/{name}").status_code == 404
        _wait_ready(http, ok=True)
    finally:
        indexes.delete_many({"_id": {"$in": list(corrupt)}})
        client.close()
