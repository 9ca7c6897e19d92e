"""Durability under faults (docs/design.md invariants 1, 2, 4, 5): kill -9 of every kind
of actor during a 20,000-document bulk, lost shards, idempotence, and MongoDB going
away for a while. Injected faults (a document failing analysis, a batch failing until
healed) and webhooks: test_injected_faults.py."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time

import pytest
import ray

from raysearch.actors import registry
from raysearch.actors.shard_store import shard_path
from raysearch.analysis.analyzer import Analyzer
from raysearch.config import NAMESPACE
from tests.conftest import debian_docs, load_jsonl, wait_operation
from tests.integration.helpers import draw_queries, mongo_posting_lists, rocks_posting_lists
from tests.oracle import Oracle, assert_same_ranking


def _actor_pid(name: str) -> int:
    return ray.get(ray.get_actor(name, namespace=NAMESPACE).pid.remote(), timeout=120)


def _kill(name: str) -> int:
    pid = _actor_pid(name)
    os.kill(pid, signal.SIGKILL)
    return pid


def _assert_index_equals_oracle(http, service, index, docs, queries=25):
    distinct = {d["id"]: d for d in docs}
    assert http.get(f"/indexes/{index}").json()["documents"] == len(distinct)
    report = http.post(f"/indexes/{index}/verify").json()
    assert report["ok"], report["mismatches"][:5]
    rocks = rocks_posting_lists(index, 4)
    assert rocks == mongo_posting_lists(service.settings.mongo_uri, index, 4)
    oracle = Oracle(docs, Analyzer())
    for q in draw_queries(docs, queries, seed=3):
        result = http.get(f"/indexes/{index}/search", params={"q": q}).json()
        total, top = oracle.top(q, 10)
        assert result["total"] == total, q
        assert_same_ranking(result["hits"], oracle.scores(q), top)


@pytest.mark.slow
def test_kill9_of_every_actor_kind_during_a_20k_bulk(http, service):
    index = "faults20k"
    docs = debian_docs(12000, 31950)
    # 50 later records reuse earlier ids with other text: each replaces the earlier one
    docs += [{**d, "id": docs[i * 300]["id"]} for i, d in enumerate(debian_docs(0, 50))]
    r = http.post(f"/bulk-indexing/{index}", json=docs)
    assert r.status_code == 202, r.text
    op_id = r.json()["operation_id"]
    total_batches = r.json()["batches"]
    victims = [registry.worker_name(1), registry.shard_name(index, 2), registry.PERSISTENCE, registry.TRACKER]
    killed = []
    deadline = time.time() + 900
    while victims and time.time() < deadline:
        op = http.get(f"/bulk-operations/{op_id}").json()
        # spread the kills over the first ~60% of the bulk
        if op["batches"]["indexed"] >= (len(killed) + 1) * total_batches * 0.12:
            assert op["status"] == "indexing", f"bulk ended before every kill: {op}"
            name = victims.pop(0)
            killed.append((name, _kill(name)))
        time.sleep(0.1)
    assert not victims, killed
    final = wait_operation(http, op_id, timeout_s=900)
    assert final["status"] == "completed", final
    distinct = len({d["id"] for d in docs})
    assert final["documents"] == {"total": len(docs), "indexed": len(docs), "failed": 0}
    assert distinct < len(docs)  # the slice repeats ids: the index counts them once (checked below)
    assert final["batches"]["persisted"] == final["batches"]["total"] == total_batches
    for name, old_pid in killed:  # every victim really died and came back
        assert _actor_pid(name) != old_pid, name
    _assert_index_equals_oracle(http, service, index, docs)


def test_same_bulk_twice_reindex_and_delete(http, service, corpora):
    index = "idempotent"
    docs = load_jsonl(corpora / "cran" / "docs.jsonl.gz", limit=600)
    for _ in range(2):
        wait_operation(http, http.post(f"/bulk-indexing/{index}", json=docs).json()["operation_id"])
    assert http.get(f"/indexes/{index}").json()["documents"] == 600
    # re-index one document with new text: its old postings disappear everywhere
    old = docs[0]
    new = {"id": old["id"], "title": "zyzzyva quokka", "body": "entirely new words"}
    assert http.put(f"/indexes/{index}/documents/{old['id']}", json=new).status_code == 200
    assert http.get(f"/indexes/{index}/search", params={"q": "zyzzyva"}).json()["hits"][0]["id"] == old["id"]
    assert old["id"] not in {
        h["id"] for h in http.get(f"/indexes/{index}/search", params={"q": old["title"], "size": 1000}).json()["hits"]
    }
    # delete another one
    gone = docs[1]["id"]
    assert http.delete(f"/indexes/{index}/documents/{gone}").status_code == 200
    assert http.get(f"/indexes/{index}/documents/{gone}").status_code == 404
    assert http.delete(f"/indexes/{index}/documents/{gone}").status_code == 404
    assert http.get(f"/indexes/{index}").json()["documents"] == 599
    expected = [new if d["id"] == old["id"] else d for d in docs if d["id"] != gone]
    _assert_index_equals_oracle(http, service, index, expected, queries=15)


def test_lost_shard_is_rebuilt_from_mongodb(http, service, corpora):
    index = "lostshard"
    docs = load_jsonl(corpora / "cisi" / "docs.jsonl.gz")
    wait_operation(http, http.post(f"/bulk-indexing/{index}", json=docs).json()["operation_id"])
    queries = draw_queries(docs, 15, seed=5)
    before = [http.get(f"/indexes/{index}/search", params={"q": q}).json() for q in queries]
    service.stop_ray()
    path = shard_path(service.settings, index, 1)
    assert os.path.isdir(path)
    shutil.rmtree(path)
    service.start()
    after = [http.get(f"/indexes/{index}/search", params={"q": q}).json() for q in queries]
    assert [(a["total"], a["hits"]) for a in after] == [(b["total"], b["hits"]) for b in before]
    shard = ray.get_actor(registry.shard_name(index, 1), namespace=NAMESPACE)
    assert ray.get(shard.info.remote())["restored"]
    _assert_index_equals_oracle(http, service, index, docs, queries=5)


def test_mongodb_outage_during_a_bulk(http, service, mongo_server, corpora):
    index = "outage"
    docs = load_jsonl(corpora / "cran" / "docs.jsonl.gz")
    r = http.post(f"/bulk-indexing/{index}", json=docs)
    op_id = r.json()["operation_id"]
    mongo_server.stop()
    try:
        ready = http.get("/readyz")
        assert ready.status_code == 503 and "MongoDB" in ready.json()["reason"]
        time.sleep(3)
    finally:
        mongo_server.start()
    final = wait_operation(http, op_id, timeout_s=300)
    assert final["status"] == "completed", final
    assert final["documents"]["indexed"] == len(docs)
    deadline = time.time() + 60
    while http.get("/readyz").status_code != 200 and time.time() < deadline:
        time.sleep(0.5)
    assert http.get("/readyz").status_code == 200
    _assert_index_equals_oracle(http, service, index, docs, queries=5)


def test_restore_command_rebuilds_from_mongodb_and_reruns_unpersisted(http, service, corpora):
    """`raysearch restore INDEX` (CLI -> POST /indexes/{index}/restore) on a live index."""
    import subprocess
    import sys

    index = "restorecli"
    docs = load_jsonl(corpora / "cran" / "docs.jsonl.gz", limit=800)
    wait_operation(http, http.post(f"/bulk-indexing/{index}", json=docs).json()["operation_id"])
    before = http.get(f"/indexes/{index}/search", params={"q": "boundary layer", "size": 20}).json()
    out = subprocess.run([sys.executable, "-m", "raysearch.cli", "restore", index, "--url", service.url],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert sum(r["documents"] for r in report["restored"]) == len(docs)
    after = http.get(f"/indexes/{index}/search", params={"q": "boundary layer", "size": 20}).json()
    assert (after["total"], after["hits"]) == (before["total"], before["hits"])
    verify = subprocess.run([sys.executable, "-m", "raysearch.cli", "verify", index, "--url", service.url],
                            capture_output=True, text=True, timeout=300)
    assert verify.returncode == 0 and json.loads(verify.stdout)["ok"]


def test_whole_ray_side_restarted_mid_bulk_resumes_from_intake(http, service, corpora):
    """Ack means durable: Serve and every actor gone mid-bulk (MongoDB stays); on start the
    tracker resumes the operation from its checkpoint and the intake log, exactly."""
    index = "ray-restart"
    docs = load_jsonl(corpora / "vaswani" / "docs.jsonl.gz", limit=6000)
    r = http.post(f"/bulk-indexing/{index}", json=docs)
    op_id = r.json()["operation_id"]
    deadline = time.time() + 300
    while time.time() < deadline:
        op = http.get(f"/bulk-operations/{op_id}").json()
        if op["batches"]["indexed"] >= 3:
            break
        time.sleep(0.05)
    assert op["status"] == "indexing", f"bulk ended before the restart, test proves nothing: {op}"
    service.stop_ray()
    service.start()
    final = wait_operation(http, op_id, timeout_s=600)
    assert final["status"] == "completed", final
    assert final["documents"] == {"total": len(docs), "indexed": len(docs), "failed": 0}
    _assert_index_equals_oracle(http, service, index, docs, queries=10)


def test_verify_reports_a_mismatch_and_the_cli_exits_1(http, service, corpora):
    import subprocess
    import sys

    from pymongo import MongoClient

    index = "corrupted"
    docs = load_jsonl(corpora / "cran" / "docs.jsonl.gz", limit=300)
    wait_operation(http, http.post(f"/bulk-indexing/{index}", json=docs).json()["operation_id"])
    assert http.post(f"/indexes/{index}/verify").json()["ok"]
    client = MongoClient(service.settings.mongo_uri)
    try:  # lose one chunk document in MongoDB
        chunk = client["raysearch"]["chunks"].find_one({"index": index}, sort=[("seq", 1)])
        client["raysearch"]["chunks"].delete_one({"_id": chunk["_id"]})
    finally:
        client.close()
    report = http.post(f"/indexes/{index}/verify").json()
    assert not report["ok"] and report["mismatches"]
    out = subprocess.run([sys.executable, "-m", "raysearch.cli", "verify", index, "--url", service.url],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1
