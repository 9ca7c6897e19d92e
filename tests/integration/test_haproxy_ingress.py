"""Two `raysearch serve` on one host at once, each behind Serve's HAProxy ingress
(serve/haproxy.py): each answers on its own port with its own data, each runs its own
HAProxy with its own files and ports, and `raysearch stop` stops each (its HAProxy too)."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import psutil
import pytest

from raysearch.serve import haproxy
from raysearch.ports import free_port
from tests.integration.helpers import wait_until


def _serve(data, port, log_path):
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAYSEARCH_WORKERS="1", RAYSEARCH_SHARDS="1")
    env.pop("RAYSEARCH_INGRESS", None)  # the default: haproxy
    for name in list(env):
        if name.startswith("RAY_SERVE_"):  # nothing of the suite's own service leaks in
            del env[name]
    log = open(log_path, "a")
    proc = subprocess.Popen([sys.executable, "-m", "raysearch.cli", "serve", "--data-dir", str(data),
                             "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    return proc, env


def _haproxies(data) -> list[psutil.Process]:
    """The HAProxy processes whose configuration lies in this service's folder."""
    folder = haproxy.state_dir(str(data))
    out = []
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            if "haproxy" in (p.info["name"] or "") and any(folder in part for part in p.info["cmdline"] or ()):
                out.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.timeout(600)
def test_two_services_on_one_host_each_behind_its_own_haproxy(tmp_path):
    services = []
    try:
        for name in ("one", "two"):
            data, port = tmp_path / name, free_port()
            proc, env = _serve(data, port, tmp_path / f"{name}.log")
            services.append((name, data, f"http://127.0.0.1:{port}", proc, env))
        for name, data, url, proc, _ in services:
            wait_until(lambda: _ready(url) or proc.poll() is not None, 300, f"service {name} ready")
            assert proc.poll() is None, (tmp_path / f"{name}.log").read_text()[-3000:]
        for name, data, url, _, _ in services:
            r = httpx.put(f"{url}/indexes/only-{name}/documents/1", json={"title": f"served by {name}"},
                          timeout=120)
            assert r.status_code < 300, r.text
        for name, data, url, _, _ in services:
            other = "two" if name == "one" else "one"
            listing = {e["index"] for e in httpx.get(f"{url}/indexes", timeout=30).json()["indexes"]}
            assert f"only-{name}" in listing and f"only-{other}" not in listing
            wait_until(lambda: httpx.get(f"{url}/indexes/only-{name}/search", params={"q": name},
                                         timeout=30).json()["total"] == 1, 60, f"{name}'s document searchable")
            assert len(_haproxies(data)) >= 1, f"service {name} runs no HAProxy of its own"
        # Each HAProxy reads its own configuration: no port of one appears in the other's.
        configs = []
        for _, data, _, _, _ in services:
            folder = haproxy.state_dir(str(data))
            configs.append("".join(open(os.path.join(root, f)).read() for root, _, files in os.walk(folder)
                                   for f in files if f == "haproxy.cfg"))
        assert configs[0] and configs[1] and configs[0] != configs[1]
    finally:
        for name, data, url, proc, env in services:
            out = subprocess.run([sys.executable, "-m", "raysearch.cli", "stop", "--data-dir", str(data)], env=env,
                                 capture_output=True, text=True, timeout=300)
            assert out.returncode == 0, out.stderr
            proc.wait(timeout=120)
            assert not _ready(url)
            wait_until(lambda: not _haproxies(data), 60, f"service {name}'s HAProxy stopped")
