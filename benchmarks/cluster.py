#!/usr/bin/env python
"""The ingest path on a Ray cluster simulated on this machine, as shards grow: CPU per
document by role, calls per batch and bytes between nodes (issue 25, "The ceiling of a
cluster"; docs/design.md has the model these figures feed).

    python benchmarks/cluster.py [--docs 16000] [--shards 2,8,32] [--nodes 3]

For each shard count: a fresh `ray.cluster_utils.Cluster` of `--nodes` nodes of one CPU
each (as tests/integration/test_lost_node.py builds), a MongoDB-compatible server of its
own, the service's actors started through the in-cluster API (this driver is the
ingress), then `--docs` Debian documents bulk-indexed in requests of 4,000 until the
operations are `completed` (persisted). Every node shares this machine's 2 cores, so wall
times and rates say little about a real cluster; what transfers are the counts:
- CPU seconds per document of every process, by role (ray::ShardStore, ray::IndexWorker,
  the persistence actor, the tracker, this driver as the ingress, raylets, the MongoDB
  server), from /proc before and after;
- calls per batch, counted by the actors themselves (raysearch/actors/traffic.py);
- bytes between nodes: what each worker sent each shard (a shard's part of a batch) and
  each shard handed the persistence actor (chunk payloads), where the two actors sit on
  different nodes (placement from Ray's state API).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import run  # noqa: E402  (benchmarks/run.py: corpus, process roles)

REQUEST_DOCS = 4000
# Indexed first, not measured: every actor started and warm (the workers' imports, ~1 s of
# CPU each at a worker's first batch, are done before it by IndexWorker.load_libraries)
WARM_DOCS = 4000
TERMINAL = ("completed", "partially_completed", "failed")
POLLS = {"get", "list"}  # this benchmark asking for its operations' status: not the path's own calls


def _placement() -> dict[str, str]:
    """actor name -> node id of every live named actor."""
    from ray.util.state import list_actors

    return {a.name: a.node_id for a in list_actors(filters=[("state", "=", "ALIVE")], limit=10_000) if a.name}


def _traffic(names: list[str]) -> dict[str, dict]:
    import ray

    from raysearch.config import NAMESPACE

    handles = {name: ray.get_actor(name, namespace=NAMESPACE) for name in names}
    return dict(zip(handles, ray.get([h.traffic.remote() for h in handles.values()], timeout=120)))


def run_one(shards: int, nodes: int, docs: list[dict], workers: int) -> dict:
    import ray
    from ray.cluster_utils import Cluster

    from raysearch.actors import registry
    from raysearch.actors.traffic import difference
    from raysearch.config import NAMESPACE, Settings
    from raysearch.incluster import InClusterClient
    from raysearch.storage.local_mongo import LocalMongo

    work = Path(tempfile.mkdtemp(prefix="rs-cluster-"))
    mongo = LocalMongo(str(work / "mongo"), log_path=str(work / "mongo.log")).start()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    for _ in range(nodes - 1):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    try:
        ray.init(address=cluster.address, namespace=NAMESPACE, log_to_driver=False)
        settings = Settings(data_dir=str(work / "data"), mongo_uri=mongo.uri, workers=workers, shards=shards,
                            node_local_dirs=True)
        client = InClusterClient(settings)
        index = f"cluster{shards}"
        client._run(client.service.create_index(index, {"shards": shards}))
        ray.get([w.load_libraries.remote() for w in registry.workers(settings)], timeout=300)
        _wait(client, client.bulk(index, docs[:WARM_DOCS])["operation_id"])  # persisted too
        placement = _placement()
        actor_names = [n for n in placement if n.startswith("raysearch:")]
        traffic_before = _traffic(actor_names)
        cpu_before = run.process_tree(os.getpid())
        start = time.perf_counter()
        ops = [client.bulk(index, docs[i:i + REQUEST_DOCS])["operation_id"]
               for i in range(WARM_DOCS, len(docs), REQUEST_DOCS)]
        finals = [_wait(client, op) for op in ops]
        wall = time.perf_counter() - start
        cpu_after = run.process_tree(os.getpid())
        root = os.getpid()
        roles = {pid: run.process_role(pid, root) for pid in cpu_after}  # while the processes live
        traffic_after = _traffic(actor_names)
        placement = _placement()
        placement["mongodb"] = cluster.head_node.node_id  # the MongoDB server runs beside the head
    finally:
        ray.shutdown()
        cluster.shutdown()
        mongo.stop()
        shutil.rmtree(work, ignore_errors=True)

    measured = len(docs) - WARM_DOCS
    batches = sum(f["batches"]["total"] for f in finals)
    by_role: Counter[str] = Counter()
    for pid, (cpu, _) in cpu_after.items():
        by_role[roles[pid]] += cpu - cpu_before.get(pid, (0.0, 0))[0]
    by_role["ingress (this driver)"] = by_role.pop("driver", 0.0)
    calls: Counter[str] = Counter()
    between_nodes = Counter()
    for name in actor_names:
        delta = difference(traffic_after.get(name, {}), traffic_before.get(name, {}))
        kind = _kind(name)
        for method, count in delta["calls"].items():
            if not (kind == "TrackerActor" and method in POLLS):
                calls[f"{kind}.{method}"] += count
        for peer, moved in delta["sent"].items():
            if peer in placement and placement[peer] != placement.get(name):
                between_nodes[f"{kind} -> {_kind(peer)}"] += moved
            between_nodes[f"{kind} -> {_kind(peer)} (all)"] += moved
    return {
        "shards": shards, "nodes": nodes, "workers": workers, "documents": measured, "batches": batches,
        "statuses": sorted({f["status"] for f in finals}), "wall_s": wall, "docs_per_s": measured / wall,
        "cpu_ms_per_doc": {role: 1000 * s / measured for role, s in by_role.most_common() if s > 0.005},
        "calls_per_batch": {name: c / batches for name, c in sorted(calls.items()) if c},
        "bytes_per_doc_between_nodes": {k: v / measured for k, v in sorted(between_nodes.items())},
    }


def _kind(actor_name: str) -> str:
    """raysearch:shard:idx:3 -> ShardStore, raysearch:worker:5 -> IndexWorker, ..."""
    from raysearch.actors import names

    if actor_name == "mongodb":
        return "MongoDB"
    if actor_name == names.PERSISTENCE:
        return "PersistenceActor"
    if actor_name == names.TRACKER:
        return "TrackerActor"
    if actor_name.startswith("raysearch:worker:"):
        return "IndexWorker"
    return "ShardStore"


def _wait(client, op_id: str, timeout_s: float = 1800) -> dict:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        op = client.operation(op_id)
        if op["status"] in TERMINAL:
            return op
        time.sleep(0.1)
    raise TimeoutError(op_id)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=int, default=16000)
    p.add_argument("--shards", default="2,8,32")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--workers", type=int, default=6)
    args = p.parse_args()
    docs = run.load_docs(args.docs + WARM_DOCS)
    print(f"# cluster.py --docs {args.docs} --shards {args.shards} --nodes {args.nodes} --workers {args.workers}")
    for shards in [int(s) for s in args.shards.split(",")]:
        r = run_one(shards, args.nodes, docs, args.workers)
        print(f"\n## {shards} shards, {r['nodes']} nodes of 1 CPU, {r['workers']} workers: {r['documents']:,} documents,"
              f" {r['batches']} batches, {r['statuses']}, {r['wall_s']:.1f} s to completed ({r['docs_per_s']:,.0f} docs/s)")
        total = sum(r["cpu_ms_per_doc"].values())
        print(f"CPU ms per document, all processes {total:.3f}: "
              + ", ".join(f"{k} {v:.3f}" for k, v in r["cpu_ms_per_doc"].items()))
        print("calls per batch: " + ", ".join(f"{k} {v:.2f}" for k, v in r["calls_per_batch"].items()))
        print("bytes per document between nodes: "
              + ", ".join(f"{k} {v:,.0f}" for k, v in r["bytes_per_doc_between_nodes"].items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
