"""serve/haproxy.py and runner.local_ray_environment: each service's own HAProxy ports and
files, socket paths HAProxy accepts, and nothing left in the caller's environment."""

from __future__ import annotations

import itertools
import os

from raysearch.config import Settings
from raysearch.runner import PROCESS_ENV, local_ray_environment
from raysearch.serve import haproxy

NODE_ID = "f" * 56  # Serve puts each node's files under its id


def test_ports_are_distinct_even_when_a_free_port_comes_back_twice():
    ports = itertools.chain([41000, 41000], itertools.count(41001))
    env = haproxy.haproxy_env("/data/a", lambda: next(ports))
    chosen = [int(env[name]) for name in ("RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_HAPROXY_METRICS_PORT",
                                          "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT", "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT",
                                          "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT",
                                          "RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT")]
    assert len(set(chosen)) == 6
    assert env["SERVE_SOCKET_REUSE_PORT_ENABLED"] == "0"  # two services never share a port silently


def test_no_port_chosen_nor_any_replica_range_holds_a_port_to_avoid():
    """The service's own port (HAProxy binds it last) and the MongoDB server's were free
    when HAProxy's were chosen; one of them taken by a replica made the start fail."""
    avoid = {41000, 41010, 41100}
    ports = itertools.count(40990)
    env = haproxy.haproxy_env("/data/a", lambda: next(ports), avoid)
    singles = [int(env[name]) for name in ("RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_HAPROXY_METRICS_PORT",
                                           "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT", "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT")]
    spans = [range(int(env[f"RAY_SERVE_DIRECT_INGRESS_MIN_{kind}_PORT"]),
                   int(env[f"RAY_SERVE_DIRECT_INGRESS_MAX_{kind}_PORT"]) + 1) for kind in ("HTTP", "GRPC")]
    assert not avoid & set(singles)
    for span in spans:
        assert not (avoid | set(singles)) & set(span), span
    assert not set(spans[0]) & set(spans[1])


def test_each_data_directory_has_its_own_folder_with_socket_paths_haproxy_accepts():
    one, two = haproxy.state_dir("/data/one"), haproxy.state_dir("/data/two")
    assert one != two and haproxy.state_dir("/data/one/") == one
    ports = itertools.count(42000)
    env = haproxy.haproxy_env("/a/very/long/data/directory/" + "x" * 200, lambda: next(ports))
    for name in ("RAY_SERVE_HAPROXY_SOCKET_PATH", "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH"):
        head, leaf = os.path.split(env[name])
        assert len(os.path.join(head, NODE_ID, leaf)) <= 97, name  # HAProxy's limit, after Serve adds the node id


def test_the_callers_environment_is_given_back(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_SERVE_HAPROXY_STATS_PORT", "1234")
    monkeypatch.delenv("RAY_SERVE_ENABLE_HA_PROXY", raising=False)
    settings = Settings(data_dir=str(tmp_path), ingress="haproxy")
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")  # the caller's choice wins
    monkeypatch.delenv("RAY_task_events_max_num_task_in_gcs", raising=False)
    with local_ray_environment(settings):
        assert os.environ["MALLOC_ARENA_MAX"] == "4"
        assert os.environ["RAY_task_events_max_num_task_in_gcs"] == PROCESS_ENV["RAY_task_events_max_num_task_in_gcs"]
        if haproxy.available():
            assert os.environ["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
            assert os.environ["RAY_SERVE_HAPROXY_STATS_PORT"] != "1234"
            assert os.path.isdir(haproxy.state_dir(str(tmp_path)))
    assert os.environ["RAY_SERVE_HAPROXY_STATS_PORT"] == "1234"
    assert "RAY_SERVE_ENABLE_HA_PROXY" not in os.environ
    assert "RAY_task_events_max_num_task_in_gcs" not in os.environ
    with local_ray_environment(Settings(data_dir=str(tmp_path), ingress="proxy")):
        assert "RAY_SERVE_ENABLE_HA_PROXY" not in os.environ
