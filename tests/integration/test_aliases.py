"""Aliases (issue 23): a name standing for one index on every read route and for writes,
switched atomically under a steady stream of searches -- none fails, and answers follow
the new index's analyzer once switched."""

from __future__ import annotations

import threading
import time

import httpx

from tests.conftest import debian_docs, wait_operation

DOCS = debian_docs(0, 400)


def _index(http, name: str, settings: dict) -> None:
    http.delete(f"/indexes/{name}")
    assert http.put(f"/indexes/{name}", json=settings).status_code == 201
    r = http.post(f"/bulk-indexing/{name}", json=DOCS)
    assert wait_operation(http, r.json()["operation_id"])["status"] == "completed"


def _ids(http, name: str, q: str) -> list[str]:
    r = http.get(f"/indexes/{name}/search", params={"q": q, "size": 50})
    assert r.status_code == 200, r.text
    return [h["id"] for h in r.json()["hits"]]


def test_alias_serves_reads_and_writes_and_switches_atomically(http, service):
    _index(http, "alias_v1", {"analyzer": {"stemming": "english"}})
    _index(http, "alias_v2", {"analyzer": {"stemming": None}})
    http.delete("/aliases/products")
    r = http.put("/aliases/products", json={"index": "alias_v1"})
    assert r.status_code == 200, r.text
    assert {"alias": "products", "index": "alias_v1"} in http.get("/aliases").json()["aliases"]
    # reads: search, document, index info, the Elasticsearch API
    assert _ids(http, "products", "libraries") == _ids(http, "alias_v1", "libraries") != []
    assert http.get(f"/indexes/products/documents/{DOCS[0]['id']}").json()["document"]["id"] == DOCS[0]["id"]
    assert http.get("/indexes/products").json()["index"] == "alias_v1"
    es = http.post("/_elastic/products/_search", json={"query": {"match": {"body": "libraries"}}}).json()
    assert es["hits"]["total"]["value"] > 0
    # writes go to the alias's index; no index is ever created under the alias's name
    r = http.post("/bulk-indexing/products", json=[{"id": "via-alias", "title": "zebrafish tooling"}])
    assert wait_operation(http, r.json()["operation_id"])["index"] == "alias_v1"
    assert _ids(http, "alias_v1", "zebrafish") == ["via-alias"]
    assert "products" not in {i["index"] for i in http.get("/indexes").json()["indexes"]}
    # names never collide; a bad action changes nothing
    assert http.put("/indexes/products", json={}).status_code == 400
    assert http.put("/aliases/alias_v1", json={"index": "alias_v2"}).status_code == 400
    assert http.put("/aliases/other", json={"index": "no_such_index"}).status_code == 404
    assert http.post("/aliases", json={"actions": [{"remove": {"alias": "products"}},
                                                   {"add": {"alias": "products", "index": "nope"}}]}).status_code == 404
    assert http.get("/indexes/products").json()["index"] == "alias_v1"
    assert http.delete("/indexes/products").status_code == 400

    # switch under a stream of searches from another client: none fails
    stemmed, unstemmed = _ids(http, "alias_v1", "libraries"), _ids(http, "alias_v2", "libraries")
    assert stemmed != unstemmed
    failures, seen, stop = [], set(), threading.Event()

    def searching():
        with httpx.Client(base_url=service.url, timeout=60) as client:
            while not stop.is_set():
                r = client.get("/indexes/products/search", params={"q": "libraries", "size": 50})
                if r.status_code != 200:
                    failures.append(r.text)
                else:
                    seen.add(tuple(h["id"] for h in r.json()["hits"]))

    thread = threading.Thread(target=searching)
    thread.start()
    time.sleep(1)
    r = http.post("/aliases", json={"actions": [{"remove": {"alias": "products"}},
                                                {"add": {"alias": "products", "index": "alias_v2"}}]})
    assert r.status_code == 200, r.text
    deadline = time.time() + 30
    while time.time() < deadline and _ids(http, "products", "libraries") != unstemmed:
        time.sleep(0.2)
    time.sleep(2.5)  # every replica's copy of the aliases is at most 2 s old
    stop.set()
    thread.join()
    assert not failures, failures[:3]
    assert _ids(http, "products", "libraries") == unstemmed
    assert seen <= {tuple(stemmed), tuple(unstemmed)}
    # deleting an index takes its aliases with it
    assert http.delete("/indexes/alias_v2").status_code == 200
    assert "products" not in {a["alias"] for a in http.get("/aliases").json()["aliases"]}
    assert http.get("/indexes/products").status_code == 404
