"""raysearch/ports.py and the start's port check (runner.LocalService): ports a service
chooses come from outside the kernel's ephemeral range, so that no outgoing connection
takes one between its choice and its bind; a port held by another process fails the start
at once, naming it. Real sockets, no Ray."""

from __future__ import annotations

import socket

import pytest

from raysearch import ports
from raysearch.config import Settings
from raysearch.runner import LocalService


def test_chosen_ports_are_free_and_never_in_the_ephemeral_range():
    low, high = ports.ephemeral_range()
    chosen = {ports.free_port() for _ in range(50)}
    assert len(chosen) > 40  # drawn at random, not one port again and again
    for port in chosen:
        assert not low <= port <= high, (port, low, high)
        assert ports.bindable(port)


def test_a_listening_port_is_not_bindable_and_a_closed_one_is():
    with socket.socket() as held:
        held.bind(("127.0.0.1", ports.free_port()))
        held.listen()
        port = held.getsockname()[1]
        assert not ports.bindable(port)
        assert not ports.wait_bindable(port, "127.0.0.1", 0.6)
    assert ports.wait_bindable(port, "127.0.0.1", 0.6)


def test_a_port_taken_as_a_connections_local_port_is_not_bindable():
    """What happened on CI: the local port of some outgoing connection was the one chosen."""
    with socket.socket() as server, socket.socket() as client:
        server.bind(("127.0.0.1", 0))
        server.listen()
        client.bind(("127.0.0.1", 0))
        client.connect(server.getsockname())
        assert not ports.bindable(client.getsockname()[1])


def test_the_start_fails_at_once_naming_a_port_held_by_another_process(tmp_path, monkeypatch, no_ray):
    monkeypatch.setattr("raysearch.runner.PORT_WAIT_S", 0.5)
    with socket.socket() as held:
        held.bind(("127.0.0.1", ports.free_port()))
        held.listen()
        port = held.getsockname()[1]
        service = LocalService(Settings(data_dir=str(tmp_path / "rs"), port=port, host="127.0.0.1"))
        with pytest.raises(RuntimeError, match=f"port {port} on 127.0.0.1 is in use by another process"):
            service.start(ready_timeout_s=5)
    assert service.mongo is None  # nothing was started before the check


def test_an_address_not_of_this_host_is_named():
    service = LocalService(Settings(data_dir="/tmp/unused", port=ports.free_port(), host="198.51.100.77"))
    with pytest.raises(RuntimeError, match="cannot listen on 198.51.100.77"):
        service._claimable_port()


def test_chosen_ports_stay_clear_of_rays_worker_ports():
    """Ray's workers bind ports in 10002-19999 by default, and `ray start` refuses any other
    component's port inside that range (test_serve_deploy hit it)."""
    assert all(not 10002 <= ports.free_port() <= 19999 for _ in range(200))


def test_a_port_chosen_or_reserved_before_is_never_chosen_again(monkeypatch):
    """What happened on CI: a port chosen later in the start (the MongoDB server's, one of
    HAProxy's) was the service's own, free until HAProxy bound it; HAProxy then failed."""
    service_port = ports.free_port()
    ports.reserve(service_port)
    first = ports.free_port()
    draws = iter([service_port, first, service_port, first])
    real_choice = ports.random.choice
    monkeypatch.setattr(ports.random, "choice", lambda pool: next(draws, None) or real_choice(pool))
    again = ports.free_port()
    assert again not in (service_port, first) and ports.bindable(again)
    assert {service_port, first, again} <= ports.spoken_for()
