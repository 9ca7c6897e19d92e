"""`raysearch serve` supervises the MongoDB server it started (issue 24): the server is
killed with -9 in the middle of a bulk; `raysearch serve` starts it again on its port and
data, the accepted work resumes by itself, and afterwards every acknowledged document is
searchable and `verify` passes. Runs `raysearch serve` as a subprocess with its own Ray
cluster, beside the suite's service (as test_benchmark_smoke.py does)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from raysearch.ports import free_port
from tests.conftest import debian_docs
from tests.integration.helpers import wait_until


@pytest.mark.timeout(900)
def test_mongodb_killed_mid_bulk_comes_back_and_nothing_acknowledged_is_lost(tmp_path):
    data, port = tmp_path / "rs", free_port()
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAYSEARCH_WORKERS="2", RAYSEARCH_SHARDS="2")
    log = open(tmp_path / "serve.log", "w")
    serve = subprocess.Popen([sys.executable, "-m", "raysearch.cli", "serve", "--data-dir", str(data),
                              "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            wait_until(lambda: http.get("/readyz").status_code == 200, 600, "the service ready")
            docs = debian_docs(0, 6000)
            accepted = []
            for start in range(0, 3000, 1000):  # acknowledged before the kill
                r = http.post("/bulk-indexing/supervised", json=docs[start:start + 1000])
                assert r.status_code == 202, r.text
                accepted.append(r.json()["operation_id"])
            pid = int(Path(str(data / "mongo") + ".pid").read_text())
            os.kill(pid, signal.SIGKILL)
            # while it is down: a bulk is refused whole (503, Retry-After) or accepted whole
            for start in range(3000, 6000, 1000):
                r = http.post("/bulk-indexing/supervised", json=docs[start:start + 1000])
                if r.status_code == 202:
                    accepted.append(r.json()["operation_id"])
                else:
                    assert r.status_code == 503 and r.headers.get("retry-after"), r.text
                    wait_until(lambda: http.get("/readyz").status_code == 200, 300, "MongoDB back")
                    r = http.post("/bulk-indexing/supervised", json=docs[start:start + 1000])
                    assert r.status_code == 202, r.text
                    accepted.append(r.json()["operation_id"])
            new_pid = int(Path(str(data / "mongo") + ".pid").read_text())
            assert new_pid != pid
            for op in accepted:
                final = wait_until(lambda: (v := http.get(f"/bulk-operations/{op}").json())["status"] in (
                    "completed", "partially_completed", "failed") and v, 600, f"operation {op} finished")
                assert final["status"] == "completed", final
            assert http.get("/indexes/supervised").json()["documents"] == 6000
            assert http.get("/indexes/supervised/search", params={"size": 0}).json()["total"] == 6000
            assert http.post("/indexes/supervised/verify").json()["ok"]
    finally:
        subprocess.run([sys.executable, "-m", "raysearch.cli", "stop", "--data-dir", str(data)], env=env,
                       capture_output=True, timeout=300)
        try:
            serve.wait(timeout=120)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()
        log.close()
    out = (tmp_path / "serve.log").read_text()
    assert "restarted it" in out, out[-3000:]
