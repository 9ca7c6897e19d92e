"""The scenario that broke the earlier system: 8,000 documents in one request.

Then every posting list in MongoDB must equal the shards', search must equal a
brute-force oracle, and all of it must survive a restart of the Ray side.
"""

from __future__ import annotations

import ray

from raysearch.analysis.analyzer import Analyzer
from tests.conftest import debian_docs, wait_operation
from tests.integration.helpers import draw_queries, mongo_posting_lists, rocks_posting_lists
from tests.oracle import Oracle, assert_same_ranking

import pytest

INDEX = "debian8k"
N_DOCS = 8000


@pytest.fixture(scope="module")
def debian():
    return debian_docs(0, N_DOCS)


@pytest.fixture(scope="module")
def bulk(http, debian):
    r = http.post(f"/bulk-indexing/{INDEX}", json=debian)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["errors"] == [] and body["documents"] == N_DOCS
    final = wait_operation(http, body["operation_id"])
    return body, final


@pytest.fixture(scope="module")
def oracle(debian):
    return Oracle(debian, Analyzer())


def test_bulk_completes_with_exact_counts(bulk, debian, http):
    accepted, final = bulk
    distinct = len({d["id"] for d in debian})
    assert final["status"] == "completed", final
    assert final["documents"] == {"total": N_DOCS, "indexed": N_DOCS, "failed": 0}  # records; the last of an id wins
    assert final["batches"]["total"] == accepted["batches"] == final["batches"]["persisted"]
    assert http.get(f"/indexes/{INDEX}").json()["documents"] == distinct


def test_every_posting_list_in_mongodb_equals_the_shards(bulk, service):
    shards = 4
    rocks = rocks_posting_lists(INDEX, shards)
    mongo = mongo_posting_lists(service.settings.mongo_uri, INDEX, shards)
    # (shard, field, term) lists: title, body and the other text fields (`_all` is derived
    # from them: index/all_field.py)
    assert len(rocks) > 40_000
    assert not any(field == "_all" for _, field, _ in rocks)
    missing = rocks.keys() - mongo.keys()
    extra = mongo.keys() - rocks.keys()
    assert not missing and not extra, (list(missing)[:5], list(extra)[:5])
    different = [key for key in rocks if rocks[key] != mongo[key]]
    assert not different, different[:5]


def test_verify_endpoint_agrees(bulk, http):
    report = http.post(f"/indexes/{INDEX}/verify").json()
    assert report["ok"], report["mismatches"][:5]
    assert report["terms_checked"] > 40_000
    # each shard compared itself with MongoDB key by key: every mirrored entry was seen
    assert [s["shard"] for s in report["shards"]] == [0, 1, 2, 3] and all(s["ok"] for s in report["shards"])
    assert report["entries_checked"] == sum(s["entries"] for s in report["shards"]) > 2 * N_DOCS
    one = http.post(f"/indexes/{INDEX}/verify", params={"shard": 2}).json()
    assert one["ok"] and one["shards"] == [dict(report["shards"][2], seconds=one["shards"][0]["seconds"])]
    bad = http.post(f"/indexes/{INDEX}/verify", params={"shard": 4})
    assert bad.status_code == 400 and "shards 0..3" in bad.json()["error"]["reason"]


def _check_queries(http, oracle, queries):
    for q in queries:
        r = http.get(f"/indexes/{INDEX}/search", params={"q": q, "size": 10})
        assert r.status_code == 200, r.text
        result = r.json()
        total, top = oracle.top(q, 10)
        assert result["total"] == total, q
        assert_same_ranking(result["hits"], oracle.scores(q), top)
        for hit in result["hits"]:
            assert hit["document"]["id"] == hit["id"]


def test_search_equals_bruteforce_oracle(bulk, http, oracle, debian):
    queries = draw_queries(debian, 60)
    _check_queries(http, oracle, queries)


def test_document_and_paging(bulk, http, debian, oracle):
    latest = {d["id"]: d for d in debian}
    doc = latest[debian[123]["id"]]
    got = http.get(f"/indexes/{INDEX}/documents/{doc['id']}").json()
    assert got == {"id": doc["id"], "document": doc}
    assert http.get(f"/indexes/{INDEX}/documents/no-such-doc").status_code == 404
    page1 = http.get(f"/indexes/{INDEX}/search", params={"q": "library", "size": 5}).json()
    page2 = http.get(f"/indexes/{INDEX}/search", params={"q": "library", "size": 5, "from": 5}).json()
    both = http.get(f"/indexes/{INDEX}/search", params={"q": "library", "size": 10}).json()
    assert [h["id"] for h in page1["hits"] + page2["hits"]] == [h["id"] for h in both["hits"]]
    assert page1["total"] == both["total"] == oracle.top("library", 1)[0]


def test_restart_of_the_ray_side_keeps_everything(bulk, http, service, oracle, debian):
    accepted, _ = bulk
    before_count = http.get(f"/indexes/{INDEX}").json()["documents"]
    queries = draw_queries(debian, 20, seed=11)
    before = [http.get(f"/indexes/{INDEX}/search", params={"q": q}).json()["hits"] for q in queries]
    service.stop_ray()
    assert not ray.is_initialized()
    service.start()
    assert http.get(f"/indexes/{INDEX}").json()["documents"] == before_count
    # a planned stop snapshots every shard: they open without scanning their documents
    from raysearch.actors import registry
    from raysearch.config import NAMESPACE

    infos = [ray.get(ray.get_actor(registry.shard_name(INDEX, n), namespace=NAMESPACE).info.remote(), timeout=60)
             for n in range(4)]
    assert [i["opened_from"] for i in infos] == ["snapshot"] * 4, infos
    assert all(i["snapshot_opstamp"] == i["last_opstamp"] > 0 for i in infos), infos
    after = [http.get(f"/indexes/{INDEX}/search", params={"q": q}).json()["hits"] for q in queries]
    assert [[(h["id"], h["score"]) for h in hits] for hits in after] == [
        [(h["id"], h["score"]) for h in hits] for hits in before
    ]
    op = http.get(f"/bulk-operations/{accepted['operation_id']}").json()
    assert op["status"] == "completed" and op["documents"]["indexed"] == N_DOCS
    _check_queries(http, oracle, queries[:10])
