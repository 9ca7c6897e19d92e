"""Lost-node scenario on a multi-node Ray cluster simulated on this machine.

Run by test_lost_node.py in its own process (it needs its own Ray cluster):
    python tests/integration/lost_node_scenario.py MONGO_URI DATA_DIR CORPUS_DIR
Prints one JSON line with the findings; exit code 0 when every check held.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import ray  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

from raysearch.actors import registry  # noqa: E402
from raysearch.config import NAMESPACE, Settings  # noqa: E402
from raysearch.incluster import InClusterClient  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from tests.conftest import load_jsonl  # noqa: E402
from tests.integration.helpers import draw_queries  # noqa: E402


def wait(client, op_id, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        op = client.operation(op_id)
        if op["status"] in ("completed", "partially_completed", "failed"):
            return op
        time.sleep(0.25)
    raise TimeoutError(op_id)


def shard_nodes(index, shards):
    out = {}
    for n in range(shards):
        handle = ray.get_actor(registry.shard_name(index, n), namespace=NAMESPACE)
        out[n] = ray.get(handle.node_id.remote(), timeout=120)
    return out


def main(mongo_uri, data_dir, corpus_dir):
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, namespace=NAMESPACE, log_to_driver=False)
    settings = Settings(data_dir=data_dir, mongo_uri=mongo_uri, mongo_db="lostnode", workers=3, shards=4,
                        node_local_dirs=True, backoff_base_s=0.1)
    client = InClusterClient(settings)
    index = "lost-node"
    from pathlib import Path

    docs = load_jsonl(Path(corpus_dir) / "cisi" / "docs.jsonl.gz")
    first, second = docs[:900], docs[900:]
    op = wait(client, client.bulk(index, first)["operation_id"])
    assert op["status"] == "completed", op
    queries = draw_queries(first, 15, seed=9)
    placement = shard_nodes(index, 4)
    # SPREAD left every shard on the head node once (CI, 2026-12-07: no node to remove). Then
    # a shard is killed until Ray restarts it on a worker (it rebuilds from MongoDB there, as
    # on a lost node), so that some shard's node can be removed.
    worker_ids = {w.node_id for w in workers}
    for attempt in range(12):
        if worker_ids & set(placement.values()):
            break
        handle = ray.get_actor(registry.shard_name(index, attempt % 4), namespace=NAMESPACE)
        ray.kill(handle, no_restart=False)
        time.sleep(1.0)
        placement = shard_nodes(index, 4)
    victim = next(w for w in workers if w.node_id in placement.values())
    lost = [n for n, node in placement.items() if node == victim.node_id]

    # Remove the node while a second bulk runs: its shards lose applied-but-unpersisted work too.
    op2 = client.bulk(index, second)["operation_id"]
    time.sleep(1.0)
    cluster.remove_node(victim)
    op2 = wait(client, op2)
    after_placement = shard_nodes(index, 4)
    assert all(after_placement[n] != victim.node_id for n in lost)
    restored = [ray.get(ray.get_actor(registry.shard_name(index, n), namespace=NAMESPACE).info.remote())["restored"]
                for n in lost]
    # Every query answers as a brute-force oracle over all documents does.
    from raysearch.analysis.analyzer import Analyzer
    from tests.oracle import Oracle, assert_same_ranking

    oracle = Oracle(docs, Analyzer())
    after = [client.search(index, q, size=10) for q in queries]
    for q, result in zip(queries, after):
        total, top = oracle.top(q, 10)
        assert result["total"] == total, q
        assert_same_ranking(result["hits"], oracle.scores(q), top)
    count = client.index(index)["documents"]
    verify = client._run(client.service.verify(index))
    findings = {
        "lost_shards": lost,
        "restored": restored,
        "second_bulk": op2["status"],
        "documents": count,
        "expected_documents": len({d["id"] for d in docs}),
        "verify_ok": verify["ok"],
        "queries_equal_oracle": len(queries),
    }
    print(json.dumps(findings))
    ok = (lost and all(restored) and op2["status"] == "completed" and count == findings["expected_documents"]
          and verify["ok"])
    ray.shutdown()
    cluster.shutdown()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
