"""The search calls' wire to the shard actors (actors/wire.py) over real Ray: searches are
carried by it (with Ray's search and statistics calls made to fail, they still answer,
and equal the answers through Ray), a connection without the shard's token is closed
unanswered, and after kill -9 of a shard searches go on (through Ray meanwhile) and then
use the new process's wire."""

from __future__ import annotations

import dataclasses
import socket
import time

import pytest

from raysearch.actors.clients import RayShard
from tests.conftest import wait_operation
from tests.integration.helpers import kill9_and_wait_restart

INDEX = "wire"
QUERIES = ["wire carried", "shard token", "restart wire", "carried token shard"]


class _NoRayReads:
    """Stands in for a shard actor handle whose read calls through Ray fail (TEST ONLY);
    every other call (wire_address, pid, ...) is the real actor's."""

    def __init__(self, handle):
        self._handle = handle

    def __getattr__(self, method: str):
        if method in ("search", "stats", "dictionary", "get_documents", "fields", "knn"):
            raise AssertionError(f"{method} went through Ray")
        return getattr(self._handle, method)


@pytest.fixture(scope="module")
def index(http):
    import raysearch

    docs = [{"id": f"w{i:03d}", "title": f"wire {'carried ' * (i % 3)}{'shard ' * (i % 4)}token{i % 5}",
             "body": f"restart {'wire ' * (i % 2)}"} for i in range(300)]
    http.delete(f"/indexes/{INDEX}")
    assert http.put(f"/indexes/{INDEX}", json={"shards": 3}).status_code == 201
    op = http.post(f"/bulk-indexing/{INDEX}", json=docs).json()["operation_id"]
    assert wait_operation(http, op)["status"] == "completed"
    rs = raysearch.connect()
    yield rs, docs
    http.delete(f"/indexes/{INDEX}")


def _answers(rs, target, q):
    result = rs._run(rs.service.coordinator.search(target, _request(q)))
    return result["total"], [(h["id"], h["score"]) for h in result["hits"]]


def _request(q):
    from raysearch.models import SearchRequest

    return SearchRequest(q=q, size=20)


def test_searches_go_over_the_wire_and_equal_those_through_ray(index):
    rs, _ = index
    _, target = rs.service.catalog.load(INDEX)
    through_ray = dataclasses.replace(target, shards=[RayShard(s.handle, wire=False) for s in target.shards])
    wire_only = dataclasses.replace(target, shards=[RayShard(_NoRayReads(s.handle)) for s in target.shards])
    for q in QUERIES:
        assert _answers(rs, wire_only, q) == _answers(rs, through_ray, q), q
    assert all(s._wire is not None and not s._wire.broken for s in wire_only.shards)


def test_a_connection_without_the_token_is_closed_unanswered(index):
    import ray

    rs, _ = index
    _, target = rs.service.catalog.load(INDEX)
    host, port, token = ray.get(target.shards[0].handle.wire_address.remote(), timeout=60)
    with socket.create_connection((host, port), timeout=10) as conn:
        conn.sendall(b"\0" * len(token) + b"\x10\0\0\0" + b"x" * 16)
        try:
            answer = conn.recv(1024)
        except ConnectionResetError:  # closed with our frame unread in its buffer
            answer = b""
        assert answer == b""  # closed, nothing answered


def test_after_kill9_of_a_shard_searches_go_on_and_then_use_its_new_wire(index):
    import ray

    rs, _ = index
    meta, target = rs.service.catalog.load(INDEX)
    expected = {q: _answers(rs, target, q) for q in QUERIES}
    handle = target.shards[1].handle
    before = ray.get(handle.wire_address.remote(), timeout=60)
    kill9_and_wait_restart(handle)
    after = ray.get(handle.wire_address.remote(), timeout=60)
    assert after[2] != before[2]  # a new process, a new token
    deadline = time.time() + 60
    while True:
        assert {q: _answers(rs, target, q) for q in QUERIES} == expected  # never a failed or different answer
        wire = target.shards[1]._wire
        if wire is not None and (wire.address, wire.token) == (tuple(after[:2]), after[2]):
            break
        assert time.time() < deadline, "the restarted shard's wire was never used"
        time.sleep(0.3)
