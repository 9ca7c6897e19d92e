"""`serve deploy serve_config.yaml` (the command itself) on a Ray cluster of its own.

The cluster is started with `ray start --head --block` on free ports and its own temp
dir; it is stopped by ending that process and then every process that names this temp
dir on its command line (`ray stop` would stop every Ray on the machine: the test
session's own and other users'). The repository's serve_config.yaml is deployed with
only what must differ on a shared machine changed: the HTTP port, the data directory,
the MongoDB database name (the suite's service uses "raysearch") and the worker count.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
import yaml

from raysearch.serve import haproxy
from raysearch.ports import free_port

ROOT = Path(__file__).parents[2]
BIN = Path(sys.executable).parent
CONFIG = ROOT / "serve_config.yaml"


def _pids_naming(text: str) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    out.append(int(entry))
        except OSError:
            continue
    return out


def _stop_cluster(head: subprocess.Popen, temp_dir: str, timeout_s: float = 60) -> None:
    """Stop only this cluster: the `ray start --block` process, then its processes by pid."""
    if head.poll() is None:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=20)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait(timeout=10)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = _pids_naming(temp_dir)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + timeout_s / 2
        while pids and time.time() < deadline:
            time.sleep(0.5)
            pids = _pids_naming(temp_dir)
        if not pids:
            return


def _run(args: list[str], env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, cwd=str(ROOT))


def _wait_ready(url: str, timeout_s: float = 300) -> None:
    deadline, last = time.time() + timeout_s, "no answer"
    while time.time() < deadline:
        try:
            r = httpx.get(url + "/readyz", timeout=10)
            if r.status_code == 200:
                return
            last = f"{r.status_code} {r.text[:300]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(1)
    raise AssertionError(f"/readyz not 200 after {timeout_s}s: {last}")


@pytest.mark.slow
def test_serve_deploy_serve_config(mongo_server, tmp_path):
    temp_dir = tempfile.mkdtemp(prefix="rsdeploy-", dir="/tmp")  # short: Ray's socket paths have a length limit
    ports = {name: free_port() for name in ("gcs", "dashboard", "agent_http", "agent_grpc", "metrics", "node_manager",
                                            "object_manager", "client", "runtime_env", "http")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS") and k != "RAY_DASHBOARD_ADDRESS"}
    env.update(RAY_AUTH_MODE="disabled", RAYSEARCH_MONGO_URI=mongo_server.uri, RAY_USAGE_STATS_ENABLED="0",
               PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    # Serve's HAProxy ingress, as the README has operators start a cluster (with ports and
    # files of its own here: the suite's service runs one beside it).
    env.update(haproxy.haproxy_env(str(tmp_path / "data"), free_port))
    haproxy_files = haproxy.state_dir(str(tmp_path / "data"))
    dashboard = f"http://127.0.0.1:{ports['dashboard']}"

    config = yaml.safe_load(CONFIG.read_text())
    assert config["applications"][0]["import_path"] == "raysearch.serve.app:build_app"
    config["http_options"]["port"] = ports["http"]
    config["applications"][0]["args"].update(data_dir=str(tmp_path / "data"), mongo_db="raysearch_deploy_test",
                                             workers=2, shards=2)
    deployed = tmp_path / "serve_config.yaml"
    deployed.write_text(yaml.safe_dump(config, sort_keys=False))

    head = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--block", "--disable-usage-stats", "--num-cpus=2",
         f"--temp-dir={temp_dir}", f"--port={ports['gcs']}", "--node-ip-address=127.0.0.1",
         "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={ports['dashboard']}",
         f"--dashboard-agent-listen-port={ports['agent_http']}", f"--dashboard-agent-grpc-port={ports['agent_grpc']}",
         f"--metrics-export-port={ports['metrics']}", f"--node-manager-port={ports['node_manager']}",
         f"--object-manager-port={ports['object_manager']}", f"--ray-client-server-port={ports['client']}",
         f"--runtime-env-agent-port={ports['runtime_env']}"],
        env=env, stdout=open(tmp_path / "ray-start.log", "w"), stderr=subprocess.STDOUT, cwd=str(ROOT),
    )
    url = f"http://127.0.0.1:{ports['http']}"
    try:
        deadline, out = time.time() + 180, None  # the dashboard answers a little after `ray start`
        while time.time() < deadline:
            assert head.poll() is None, (tmp_path / "ray-start.log").read_text()[-3000:]
            out = _run([str(BIN / "serve"), "deploy", str(deployed), "--address", dashboard], env, timeout=120)
            if out.returncode == 0:
                break
            time.sleep(2)
        assert out is not None and out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]

        _wait_ready(url)
        assert _pids_naming(haproxy_files), "no HAProxy serves the deployed application"
        with httpx.Client(base_url=url, timeout=60) as http:
            docs = [{"id": f"d{i}", "title": f"deployed by serve deploy {i}", "body": "tiling window manager"}
                    for i in range(10)]
            r = http.post("/bulk-indexing/deployed", json=docs)
            assert r.status_code == 202, r.text
            op_id = r.json()["operation_id"]
            deadline = time.time() + 120
            while (op := http.get(f"/bulk-operations/{op_id}").json())["status"] not in (
                    "completed", "partially_completed", "failed"):
                assert time.time() < deadline, op
                time.sleep(0.25)
            assert op["status"] == "completed", op
            found = http.get("/indexes/deployed/search", params={"q": "tiling manager", "size": 20}).json()
            assert found["total"] == 10 and {h["id"] for h in found["hits"]} == {d["id"] for d in docs}
            assert http.get("/indexes/deployed/documents/d3").json()["document"] == docs[3]

        # It used the given MongoDB, in its own database.
        from pymongo import MongoClient

        client = MongoClient(mongo_server.uri)
        try:
            assert client["raysearch_deploy_test"]["indexes"].find_one({"_id": "deployed"}) is not None
        finally:
            client.close()

        down = _run([str(BIN / "serve"), "shutdown", "-y", "--address", dashboard], env, timeout=120)
        assert down.returncode == 0, down.stdout[-2000:] + down.stderr[-2000:]
        with pytest.raises(httpx.HTTPError):
            deadline = time.time() + 60
            while time.time() < deadline:  # the proxy stops answering once Serve is shut down
                httpx.get(url + "/healthz", timeout=5)
                time.sleep(1)
    finally:
        _stop_cluster(head, temp_dir)
        leftover = _pids_naming(temp_dir) + _pids_naming(haproxy_files)
        shutil.rmtree(temp_dir, ignore_errors=True)
        shutil.rmtree(haproxy_files, ignore_errors=True)
    assert not leftover, f"processes of the test cluster still running: {leftover}"
