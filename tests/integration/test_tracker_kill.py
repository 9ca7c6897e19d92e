"""kill -9 of the TrackerActor's process during a bulk: the operation still
completes, with the right counters, because the tracker restores its
checkpoint and resumes from the intake log."""

from __future__ import annotations

import os
import signal
import time

import ray

from raysearch.actors import registry
from raysearch.config import NAMESPACE
from tests.conftest import debian_docs, wait_operation

INDEX = "tracker-kill"


def test_tracker_killed_mid_bulk(http):
    docs = debian_docs(8000, 12000)
    distinct = len({d["id"] for d in docs})
    tracker = ray.get_actor(registry.TRACKER, namespace=NAMESPACE)
    old_pid = ray.get(tracker.pid.remote(), timeout=60)

    r = http.post(f"/bulk-indexing/{INDEX}", json=docs)
    assert r.status_code == 202, r.text
    op_id = r.json()["operation_id"]
    # Kill once a few batches are indexed, well before the end.
    deadline = time.time() + 120
    while time.time() < deadline:
        op = http.get(f"/bulk-operations/{op_id}").json()
        if op["batches"]["indexed"] >= 2:
            break
        time.sleep(0.05)
    assert op["status"] == "indexing", f"bulk finished before the kill, test proves nothing: {op}"
    os.kill(old_pid, signal.SIGKILL)

    final = None
    deadline = time.time() + 600
    while time.time() < deadline:  # the ingress sees errors while the tracker restarts
        try:
            final = wait_operation(http, op_id, timeout_s=600)
            break
        except Exception:
            time.sleep(1)
    new_pid = ray.get(tracker.pid.remote(), timeout=60)
    assert new_pid != old_pid
    assert final["status"] == "completed", final
    assert final["documents"] == {"total": len(docs), "indexed": len(docs), "failed": 0}
    assert final["batches"]["indexed"] == final["batches"]["persisted"] == final["batches"]["total"]
    assert http.get(f"/indexes/{INDEX}").json()["documents"] == distinct
    assert http.post(f"/indexes/{INDEX}/verify").json()["ok"]
