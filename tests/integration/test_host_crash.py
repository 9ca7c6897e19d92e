"""The whole service killed mid-bulk, as a host crash would (issue 24): kill -9 of
`raysearch serve` and of every process it started (Ray's, the actors', the MongoDB
server), then `raysearch serve` again on the same data directory. It becomes ready
without a manual step, and every acknowledged document is there at its last acknowledged
version, once each. Runs `raysearch serve` as a subprocess with its own Ray cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import zlib

import httpx
import psutil
import pytest

from raysearch.ports import free_port
from tests.conftest import debian_docs
from tests.integration.helpers import wait_until

TERMINAL = ("completed", "partially_completed", "failed")
DIMS = 8


def _vector(text: str) -> list[float]:
    """A small vector per version of a document (its vectors must survive the crash too)."""
    h = zlib.crc32(text.encode())
    return [float((h >> (3 * i)) % 7 - 3) or 0.5 for i in range(DIMS)]


def _serve(data, port, log_path):
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAYSEARCH_WORKERS="2", RAYSEARCH_SHARDS="2")
    log = open(log_path, "a")
    proc = subprocess.Popen([sys.executable, "-m", "raysearch.cli", "serve", "--data-dir", str(data),
                             "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    return proc, env


def _kill_everything(proc: subprocess.Popen) -> int:
    """SIGKILL the serve process and all its descendants at once; returns how many."""
    root = psutil.Process(proc.pid)
    victims = [root, *root.children(recursive=True)]
    for p in victims:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(victims, timeout=60)
    return len(victims)


def _explain(url: str, log_path) -> str:
    """What the service said while it was not ready: /readyz's body and the end of its log."""
    try:
        said = httpx.get(url + "/readyz", timeout=20).text[:2000]
    except httpx.HTTPError as exc:
        said = f"no answer: {type(exc).__name__}"
    with open(log_path, errors="replace") as f:
        tail = f.readlines()[-60:]
    return f"/readyz: {said}\nlast lines of the serve log:\n{''.join(tail)}"


def _ready(http: httpx.Client, proc: subprocess.Popen, url: str, log_path) -> bool:
    """Whether /readyz says ready; an AssertionError at once if `raysearch serve` exited
    (waiting out the timeout for a process that is gone hid the cause)."""
    if proc.poll() is not None:
        raise AssertionError(f"raysearch serve exited with {proc.returncode}\n{_explain(url, log_path)}")
    return http.get("/readyz").status_code == 200


@pytest.mark.timeout(1200)
def test_the_whole_service_killed_mid_bulk_restarts_with_everything_acknowledged(tmp_path):
    data, port, log = tmp_path / "rs", free_port(), tmp_path / "serve.log"
    proc, env = _serve(data, port, log)
    url = f"http://127.0.0.1:{port}"
    acknowledged: dict[str, str] = {}  # id -> title of its last acknowledged version (its vector: _vector(title))
    try:
        with httpx.Client(base_url=url, timeout=120) as http:
            wait_until(lambda: _ready(http, proc, url, log), 600, "the service ready",
                       explain=lambda: _explain(url, log))
            r = http.put("/indexes/crash", json={"fields": {"emb": {"type": "vector", "dims": DIMS}}})
            assert r.status_code == 201, r.text
            docs = [{**d, "emb": _vector(d["title"])} for d in debian_docs(0, 4000)]
            ops = []
            for start in range(0, 4000, 1000):
                r = http.post("/bulk-indexing/crash", json=docs[start:start + 1000])
                assert r.status_code == 202, r.text
                ops.append(r.json()["operation_id"])
                acknowledged.update({d["id"]: d["title"] for d in docs[start:start + 1000]})
                if start == 0:  # the first completes before the crash; the rest are in flight
                    wait_until(lambda: http.get(f"/bulk-operations/{ops[0]}").json()["status"] in TERMINAL, 300,
                          "the first bulk")
            updates = [{**d, "title": f"second version of {d['id']}", "emb": _vector(f"second version of {d['id']}")}
                       for d in docs[:300]]
            r = http.post("/bulk-indexing/crash", json=updates)  # re-indexes ids of the first, finished bulk
            assert r.status_code == 202, r.text
            ops.append(r.json()["operation_id"])
            acknowledged.update({d["id"]: d["title"] for d in updates})
        killed = _kill_everything(proc)
        assert killed > 5, killed  # serve, Ray's processes, the actors, the MongoDB server

        proc, env = _serve(data, port, log)  # the same data directory and port
        with httpx.Client(base_url=url, timeout=120) as http:
            wait_until(lambda: _ready(http, proc, url, log), 900, "the restarted service ready",
                       explain=lambda: _explain(url, log))
            for op in ops:
                final = wait_until(lambda: (v := http.get(f"/bulk-operations/{op}").json())["status"] in TERMINAL and v,
                              600, f"operation {op}")
                assert final["status"] == "completed", final
            assert http.get("/indexes/crash").json()["documents"] == len(acknowledged)
            assert http.get("/indexes/crash/search", params={"size": 0}).json()["total"] == len(acknowledged)
            for doc_id in list(acknowledged)[::97] + [d["id"] for d in updates[::29]]:
                stored = http.get(f"/indexes/crash/documents/{doc_id}").json()["document"]
                assert stored["title"] == acknowledged[doc_id], doc_id
                assert stored["emb"] == _vector(acknowledged[doc_id]), doc_id  # its vector, of that version
            knn = http.post("/indexes/crash/search", json={"knn": {"field": "emb", "vector": [1.0] * DIMS, "k": 10000,
                                                                    "num_candidates": 10000}, "size": 0}).json()
            assert knn["total"] == len(acknowledged)  # every document's vector, once
            hits = http.get("/indexes/crash/search", params={"q": '"second version"', "size": 0}).json()
            assert hits["total"] == len(updates)
            assert http.post("/indexes/crash/verify").json()["ok"]
    finally:
        subprocess.run([sys.executable, "-m", "raysearch.cli", "stop", "--data-dir", str(data)], env=env,
                       capture_output=True, timeout=300)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            _kill_everything(proc)
