"""Snapshots (issue 23): taken during a bulk, a snapshot holds exactly the operations accepted
before it started (it waits for the one in flight and names it) and none accepted after
(held meanwhile, indexed once it ends); restored as a new index -- on this service and on a
second service with its own data directory -- it answers searches like an index built from
those operations alone, and passes verify."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import httpx
import pytest

from raysearch.ports import free_port
from tests.conftest import debian_docs, wait_operation
from tests.integration.helpers import wait_until

FIELDS = {"section": {"type": "keyword"}, "emb": {"type": "vector", "dims": 4}}
QUERIES = [{"q": "library", "size": 20}, {"q": "python module", "size": 20, "facets": {"s": {"terms": {"field": "section"}}}},
           {"knn": {"field": "emb", "vector": [1, 0.5, -1, 2], "k": 10}}, {"filter": {"term": {"section": "libs"}}, "size": 0}]


def _docs(start: int, stop: int, tag: str = "") -> list[dict]:
    out = []
    for i, d in enumerate(debian_docs(start, stop)):
        out.append({**d, "title": f"{d['title']}{tag}", "emb": [1.0, (i % 7) - 3.0, (i % 5) * 0.5, 1.0 + i % 3]})
    return out


def _answers(http, index: str) -> list:
    out = []
    for body in QUERIES:
        r = http.post(f"/indexes/{index}/search", json=body)
        assert r.status_code == 200, r.text
        answer = r.json()
        answer.pop("took_ms")
        out.append(answer)
    return out


@pytest.mark.timeout(900)
def test_snapshot_during_a_bulk_restores_here_and_on_another_service(http, service, tmp_path):
    a, b = _docs(0, 800), _docs(800, 2800)
    c_new, c_updates = _docs(2800, 3000), _docs(0, 50, tag=" (after the snapshot)")
    for name in ("snap", "snap_control", "snap_restored"):
        http.delete(f"/indexes/{name}")
    for name in ("snap", "snap_control"):
        assert http.put(f"/indexes/{name}", json={"fields": FIELDS}).status_code == 201
    r = http.post("/bulk-indexing/snap", json=a)
    assert wait_operation(http, r.json()["operation_id"])["status"] == "completed"
    op_b = http.post("/bulk-indexing/snap", json=b).json()["operation_id"]  # in flight at the cut

    path = str(tmp_path / "snap1")
    taken: dict = {}
    thread = threading.Thread(target=lambda: taken.update(
        httpx.post(f"{service.url}/indexes/snap/snapshot", json={"path": path}, timeout=600).json()))
    thread.start()
    time.sleep(1.0)  # the cut is made at once; what follows is accepted after it
    r = http.post("/bulk-indexing/snap", json=c_new + c_updates)
    assert r.status_code == 202, r.text
    op_c = r.json()["operation_id"]
    thread.join(timeout=600)
    assert taken.get("snapshot") == path, taken
    assert op_b in taken["operations"]["waited_for"] or http.get(f"/bulk-operations/{op_b}").json()["status"] == "completed"
    assert taken["documents"] == 2800 and taken["shards"] == 4
    assert wait_operation(http, op_c)["status"] == "completed"  # held, then indexed once the snapshot ended
    assert http.get("/indexes/snap").json()["documents"] == 3000

    # what the snapshot should hold: the operations before its cut, and nothing else
    r = http.post("/bulk-indexing/snap_control", json=a + b)
    assert wait_operation(http, r.json()["operation_id"])["status"] == "completed"
    expected = _answers(http, "snap_control")

    r = http.post("/snapshots/restore", json={"path": path, "index": "snap_restored"})
    assert r.status_code == 201, r.text
    assert r.json()["documents"] == 2800
    assert _answers(http, "snap_restored") == expected
    stored = http.get(f"/indexes/snap_restored/documents/{c_updates[0]['id']}").json()["document"]
    assert stored["title"] == a[0]["title"]  # the version before the cut
    assert http.post("/indexes/snap_restored/verify").json()["ok"]
    # bad requests name the problem, and change nothing
    assert http.post("/snapshots/restore", json={"path": path, "index": "snap_restored"}).status_code == 409
    assert http.post("/snapshots/restore", json={"path": str(tmp_path / "none")}).status_code == 400
    assert http.post("/indexes/snap/snapshot", json={"path": path}).status_code == 400  # not empty
    assert http.post("/indexes/snap/snapshot", json={"path": "relative/dir"}).status_code == 400

    # a second service, its own Ray cluster, MongoDB and data directory: the CLI restores it there
    data, port = tmp_path / "second", free_port()
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAYSEARCH_WORKERS="2")
    log = open(tmp_path / "second.log", "a")
    proc = subprocess.Popen([sys.executable, "-m", "raysearch.cli", "serve", "--data-dir", str(data),
                             "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=120) as second:
            wait_until(lambda: second.get("/readyz").status_code == 200, 600, "the second service ready")
            done = subprocess.run([sys.executable, "-m", "raysearch.cli", "restore-snapshot", path, "--as", "moved",
                                   "--url", url], env=env, capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, done.stderr
            assert _answers(second, "moved") == expected
            assert second.post("/indexes/moved/verify").json()["ok"]
    finally:
        subprocess.run([sys.executable, "-m", "raysearch.cli", "stop", "--data-dir", str(data)], env=env,
                       capture_output=True, timeout=300)
        proc.wait(timeout=120)
