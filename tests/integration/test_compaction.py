"""MongoDB holds live data, not history (docs/design.md invariant 7): compaction of each
shard's chunk log, on the real service. Re-indexing existing ids grows MongoDB by at
most 10 % once compacted, and it stays within 2x the shard's own data; a kill -9 of the
PersistenceActor in the middle of a compaction loses and resurrects nothing (verify),
and a shard rebuilt from the compacted chunks answers as before."""

from __future__ import annotations

import os
import signal
import time

import ray
from pymongo import MongoClient

from raysearch.actors import registry
from raysearch.config import NAMESPACE
from tests.conftest import debian_docs, wait_operation

INDEX = "compacted"
SHARDS = 2


def _persistence():
    return ray.get_actor(registry.PERSISTENCE, namespace=NAMESPACE)


def _mongo_bytes(uri: str) -> int:
    """Bytes of this index's chunk documents (what dominates MongoDB's dataSize)."""
    client = MongoClient(uri)
    try:
        return sum(len(c["data"]) + 64 for c in client["raysearch"]["chunks"].find({"index": INDEX}, {"data": 1}))
    finally:
        client.close()


def _rocks_bytes() -> int:
    """Bytes of the shards' mirrored entries (keys and values), read from RocksDB."""
    total = 0
    for n in range(SHARDS):
        shard = ray.get_actor(registry.shard_name(INDEX, n), namespace=NAMESPACE)
        total += sum(len(k) + len(v) for k, v in ray.get(shard.export.remote(), timeout=300))
    return total


def _wait_purged(timeout_s: float = 120) -> list[dict]:
    """Until every shard's blocks hold at most 1 % dead documents: an idle shard purges the
    postings of re-indexed and deleted documents by writes of its own (ShardIndex.purge)."""
    deadline = time.time() + timeout_s
    while True:
        infos = [ray.get(ray.get_actor(registry.shard_name(INDEX, n), namespace=NAMESPACE).info.remote(), timeout=60)
                 for n in range(SHARDS)]
        if all(i["dead_documents_held"] <= 0.01 * i["documents_held"] for i in infos) or time.time() > deadline:
            return infos
        time.sleep(0.5)


def _bulk(http, docs, size=100):
    """Many small requests: many batches, many drain cycles, many log chunks."""
    ops = [http.post(f"/bulk-indexing/{INDEX}", json=docs[i:i + size]).json()["operation_id"]
           for i in range(0, len(docs), size)]
    for op in ops:
        assert wait_operation(http, op)["status"] == "completed"


def _compact_all() -> list[dict]:
    persistence = _persistence()
    ray.get(persistence.flush.remote(), timeout=600)
    return [ray.get(persistence.compact.remote(INDEX, n), timeout=600) for n in range(SHARDS)]


def _snapshot(http):
    out = []
    for q in ["library", "python module", "game", "server daemon"]:
        r = http.get(f"/indexes/{INDEX}/search", params={"q": q, "size": 20}).json()
        out.append((r["total"], [(h["id"], h["score"]) for h in r["hits"]]))
    return out


def test_reindexing_existing_ids_keeps_mongodb_at_live_size(http, service):
    http.delete(f"/indexes/{INDEX}")
    assert http.put(f"/indexes/{INDEX}", json={"shards": SHARDS}).status_code == 201
    docs = debian_docs(0, 3000)
    _bulk(http, docs)
    reports = _compact_all()
    assert all(r["compacted"] for r in reports), reports
    print("first compaction:", reports)
    assert http.post(f"/indexes/{INDEX}/verify").json()["ok"]
    uri = service.settings.mongo_uri
    compacted = _mongo_bytes(uri)
    done_before = ray.get(_persistence().status.remote(), timeout=60)["compactions"]
    for round_ in range(2):  # every id again, twice: without compaction MongoDB would triple
        _bulk(http, [{**d, "body": d["body"] + f" revision {round_}"} for d in docs])
    grown = _mongo_bytes(uri)
    if ray.get(_persistence().status.remote(), timeout=60)["compactions"] == done_before:
        assert grown > 2 * compacted  # the log holds history until it is compacted (unless the
        # background compactor, triggered by these 200k+ entries, already ran)
    # every old posting is dead now: the idle shards purge them (down to 1 %) before the bound
    infos = _wait_purged()
    assert all(i["dead_documents_held"] <= 0.01 * i["documents_held"] for i in infos), infos
    print("second compaction:", _compact_all())
    after = _mongo_bytes(uri)
    print(f"chunk bytes: compacted {compacted}, with history {grown}, compacted again {after}")
    assert after <= 1.10 * compacted, (compacted, grown, after)  # ...and only live data after
    assert after <= 2 * _rocks_bytes()
    assert http.post(f"/indexes/{INDEX}/verify").json()["ok"]
    assert http.get(f"/indexes/{INDEX}").json()["documents"] == len({d["id"] for d in docs})


def test_updates_are_compacted_in_the_background(http, service):
    """No compaction asked for: re-indexing a fifth of the ids leaves history in the log (and
    dead postings, which the idle shards purge), the shards count the bytes it superseded,
    and the background compactor rewrites each shard once that history passes
    compact_garbage_ratio of its live bytes -- MongoDB comes back to within 10 % of its size
    before the update."""
    docs = debian_docs(0, 3000)
    _compact_all()
    uri = service.settings.mongo_uri
    before = _mongo_bytes(uri)
    persistence = _persistence()
    done_before = ray.get(persistence.status.remote(), timeout=60)["compactions"]
    _bulk(http, [{**d, "body": d["body"] + " updated"} for d in docs[::5]])
    infos = _wait_purged()
    assert all(i["dead_documents_held"] <= 0.01 * i["documents_held"] for i in infos), infos
    ray.get(persistence.flush.remote(), timeout=600)
    status = ray.get(persistence.status.remote(), timeout=60)
    deadline = time.time() + 120
    while time.time() < deadline:
        status = ray.get(persistence.status.remote(), timeout=60)
        logs = [status["logs"].get(f"{INDEX}:{n}", {}) for n in range(SHARDS)]
        if status["compactions"] >= done_before + SHARDS and not any(log.get("compaction_due") for log in logs):
            break
        time.sleep(1)
    print("after the update:", status["logs"], status["last_compaction"])
    assert status["compactions"] >= done_before + SHARDS, status  # every shard, by itself
    after = _mongo_bytes(uri)
    assert after <= 1.10 * before, (before, after)
    assert http.post(f"/indexes/{INDEX}/verify").json()["ok"]


def _kill_when(pid: int, moment, timeout_s: float = 120) -> bool:
    """SIGKILL `pid` as soon as `moment()` holds (polled every few ms); whether it did."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if moment():
            os.kill(pid, signal.SIGKILL)
            return True
        time.sleep(0.003)
    os.kill(pid, signal.SIGKILL)
    return False


def test_kill9_during_compaction_loses_and_resurrects_nothing(http, service):
    """The kill is aimed at moments inside a compaction -- once the new generation's first
    chunks are in MongoDB (before the switch), and once the head has switched (while what it
    replaced is being deleted) -- and each time a bulk is being drained into the same shard's
    log meanwhile, so compaction and persistence race as they do in production."""
    persistence = _persistence()
    docs = debian_docs(0, 3000)
    before = _snapshot(http)
    db = MongoClient(service.settings.mongo_uri)["raysearch"]
    head_id = f"{INDEX}:0"
    observed = []
    try:
        for round_, moment in enumerate(("generation started", "head switched", "generation started")):
            # new history to compact: re-index a third of the ids, delete a few
            _bulk(http, [{**d, "title": d["title"] + f" v{round_}"} for d in docs[:1000]])
            for d in docs[2990:2993]:
                http.delete(f"/indexes/{INDEX}/documents/{d['id']}")
            ray.get(persistence.flush.remote(), timeout=600)
            gen = (db.chunk_heads.find_one({"_id": head_id}) or {"gen": 0})["gen"]
            pid = ray.get(persistence.pid.remote(), timeout=60)
            racing = [http.post(f"/bulk-indexing/{INDEX}", json=[{**d, "body": d["body"] + f" race {round_}"}
                                                                  for d in docs[1000 + i:1100 + i]]).json()["operation_id"]
                      for i in range(0, 500, 100)]  # drained while the compaction runs
            persistence.compact.remote(INDEX, 0)  # not waited for: killed mid-way
            if moment == "generation started":
                when = lambda: db.chunks.count_documents({"index": INDEX, "shard": 0, "gen": gen + 1}, limit=1) > 0  # noqa: E731
            else:
                when = lambda: (db.chunk_heads.find_one({"_id": head_id}) or {"gen": 0})["gen"] > gen  # noqa: E731
            assert _kill_when(pid, when), f"compaction never reached '{moment}'"
            head = db.chunk_heads.find_one({"_id": head_id}) or {"gen": 0}
            observed.append({"moment": moment, "switched": head["gen"] > gen,
                             "new_generation_chunks": db.chunks.count_documents({"index": INDEX, "shard": 0,
                                                                                 "gen": gen + 1})})
            deadline = time.time() + 120
            while time.time() < deadline:
                try:
                    if ray.get(persistence.pid.remote(), timeout=30) != pid:
                        break
                except Exception:
                    time.sleep(0.5)
            for op in racing:
                assert wait_operation(http, op)["status"] == "completed"
            report = http.post(f"/indexes/{INDEX}/verify").json()
            assert report["ok"], (moment, observed, report["mismatches"][:5])
    finally:
        db.client.close()
    print("kills landed at:", observed)  # each one inside a compaction: _kill_when saw its moment
    _compact_all()
    assert http.post(f"/indexes/{INDEX}/verify").json()["ok"]
    # a shard rebuilt from the compacted chunks alone answers as the live one did
    expected = _snapshot(http)
    assert http.post(f"/indexes/{INDEX}/restore").status_code == 200
    assert _snapshot(http) == expected
    assert http.get(f"/indexes/{INDEX}").json()["documents"] == len({d["id"] for d in docs}) - 3
    body = http.get(f"/indexes/{INDEX}/documents/{docs[1000]['id']}").json()
    assert "race 2" in str(body)  # the last racing bulk is there, after the kills and the restore
    assert before != expected  # the titles changed: the snapshot really compares something
