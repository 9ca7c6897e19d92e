"""Bad input gets a clear 4xx naming the problem, and the valid rest proceeds."""

from __future__ import annotations

from tests.conftest import wait_operation

INDEX = "bad-input"


def test_body_that_is_not_json_is_400(http):
    r = http.post(f"/bulk-indexing/{INDEX}", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert "not valid JSON" in r.json()["error"]["reason"]


def test_empty_body_is_400(http):
    r = http.post(f"/bulk-indexing/{INDEX}", content=b"")
    assert r.status_code == 400 and "empty" in r.json()["error"]["reason"]


def test_bad_documents_are_listed_and_good_ones_indexed(http):
    docs = [
        {"id": "good-1", "title": "alpha beta"},
        "not an object",
        {"id": 42, "title": "numeric id"},
        {"id": "good-2", "title": "gamma", "nested": {"$gt": 1}},
        {"id": "bad-field", "$where": "sleep(1000)"},
        {"title": "no id gets one"},
    ]
    r = http.post(f"/bulk-indexing/{INDEX}", json=docs)
    assert r.status_code == 202, r.text
    body = r.json()
    errors = {e["position"]: e for e in body["errors"]}
    assert set(errors) == {1, 2, 3, 4}
    assert "object" in errors[1]["reason"]
    assert "string" in errors[2]["reason"]
    assert "$" in errors[3]["reason"] and errors[3]["id"] == "good-2"
    assert errors[4]["id"] == "bad-field"
    assert body["documents"] == 2
    final = wait_operation(http, body["operation_id"])
    assert final["status"] == "partially_completed"
    assert final["documents"] == {"total": 6, "indexed": 2, "failed": 4}
    assert http.get(f"/indexes/{INDEX}/documents/good-1").status_code == 200
    hits = http.get(f"/indexes/{INDEX}/search", params={"q": "alpha"}).json()["hits"]
    assert [h["id"] for h in hits] == ["good-1"]


def test_ndjson_body(http):
    body = b'{"id": "nd-1", "title": "delta"}\n{"id": "nd-2", "title": "delta epsilon"}\nnot json\n'
    r = http.post(f"/bulk-indexing/{INDEX}", content=body, headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 202, r.text
    assert [e["position"] for e in r.json()["errors"]] == [2]
    wait_operation(http, r.json()["operation_id"])
    assert http.get(f"/indexes/{INDEX}/search", params={"q": "delta"}).json()["total"] == 2


def test_unknown_index_is_404(http):
    r = http.get("/indexes/no-such-index/search", params={"q": "x"})
    assert r.status_code == 404 and "no-such-index" in r.json()["error"]["reason"]
    assert http.get("/indexes/no-such-index").status_code == 404
    assert http.get("/bulk-operations/nope").status_code == 404


def test_bad_search_parameters_are_400(http):
    http.post(f"/bulk-indexing/{INDEX}", json=[{"id": "x", "title": "y"}])
    for params in ({"q": "a", "size": "lots"}, {"q": "a", "size": 10001}, {"q": "a" * 9000},
                   {"q": "a", "from": 99_995, "size": 10}):
        r = http.get(f"/indexes/{INDEX}/search", params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["error"]["reason"]
    # q absent, "" or "*" is every document (docs/api.md), not an error
    for params in ({"q": ""}, {"q": "*"}, {}):
        r = http.get(f"/indexes/{INDEX}/search", params=params)
        assert r.status_code == 200 and r.json()["total"] >= 1, (params, r.text)


def test_invalid_index_name_is_400(http):
    r = http.post("/bulk-indexing/Bad..Name", json=[{"id": "a"}])
    assert r.status_code == 400 and "index name" in r.json()["error"]["reason"]


def test_health_and_readiness(http):
    assert http.get("/healthz").status_code == 200
    r = http.get("/readyz")
    assert r.status_code == 200, r.text


def test_per_document_limits_name_the_problem(http):
    deep = {"id": "deep"}
    node = deep
    for _ in range(21):
        node["n"] = {}
        node = node["n"]
    docs = [
        {"id": "x" * 513, "title": "id too long"},
        {"id": "", "title": "empty id"},
        {"id": "dotted", "a.b": "field with a dot"},
        {"id": "longname", "f" * 257: "field name too long"},
        deep,
        {"id": "huge", "body": "w " * 600_000},
        {"id": "fine", "title": "the only valid one", "text": "$where sleep(1000)"},
    ]
    r = http.post("/bulk-indexing/limits", json=docs)
    assert r.status_code == 202, r.text
    reasons = {e["position"]: e["reason"] for e in r.json()["errors"]}
    assert set(reasons) == {0, 1, 2, 3, 4, 5}
    assert "512" in reasons[0] and "1-512" in reasons[1] and "." in reasons[2]
    assert "256" in reasons[3] and "deeper than 20" in reasons[4] and "limit" in reasons[5]
    assert r.json()["documents"] == 1


def test_search_body_values_of_the_wrong_type_are_400_naming_them(http):
    http.post(f"/bulk-indexing/{INDEX}", json=[{"id": "x", "title": "y"}])
    for body, named in (({"q": "a", "size": "10"}, "size"), ({"q": "a", "highlight": "maybe"}, "highlight"),
                        ({"q": "a", "from": 1.5}, "from"), ({"q": 5}, "q")):
        r = http.post(f"/indexes/{INDEX}/search", json=body)
        assert r.status_code == 400 and named in r.json()["error"]["reason"], (body, r.text)
