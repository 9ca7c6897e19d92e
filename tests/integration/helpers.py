"""Helpers for integration tests: read MongoDB and the shards independently."""

from __future__ import annotations

import re
import time
from contextlib import contextmanager

import ray
from pymongo import MongoClient

from raysearch.actors import registry
from raysearch.config import NAMESPACE
from raysearch.index.compaction import live_state
from raysearch.index.shard_index import posting_lists
from raysearch.storage.mongo import MongoStore
from tests.oracle import draw_queries  # noqa: F401  (re-exported: integration tests import it from here)


def shard_handle(index: str, n: int):
    return ray.get_actor(registry.shard_name(index, n), namespace=NAMESPACE)


def rocks_posting_lists(index: str, shards: int) -> dict[tuple[int, str, str], dict]:
    """(shard, field, term) -> {doc id: (tf, dl, positions)} read from every shard's RocksDB."""
    out: dict = {}
    for n in range(shards):
        items = ray.get(shard_handle(index, n).export.remote(), timeout=300)
        for (field, term), lists in posting_lists(items).items():
            out[(n, field, term)] = lists
    return out


def mongo_posting_lists(uri: str, index: str, shards: int, db: str = "raysearch") -> dict:
    """The same, rebuilt from MongoDB's chunk documents alone (replayed in seq order)."""
    client = MongoClient(uri)
    store = MongoStore(uri, db)
    out: dict = {}
    try:
        for chunk in client[db]["chunks"].find({"index": index}, projection={"postings": 1, "entries": 1}):
            assert chunk["postings"] <= 5000 and chunk["entries"] <= 5000
        for n in range(shards):
            state = live_state(store.iter_chunks(index, n))  # compacted generation, then newer log chunks
            for (field, term), lists in posting_lists(state.items()).items():
                out[(n, field, term)] = lists
    finally:
        client.close()
        store.close()
    return out


_WORD = re.compile(r"[A-Za-z]{3,}")


@contextmanager
def deployed_beside(service, app, name: str):
    """Deploy a second Serve application at /<name> beside the suite's service; yields its base URL
    once /<name>/healthz answers, and deletes it afterwards."""
    import httpx
    from ray import serve

    serve.run(app, name=name, route_prefix=f"/{name}", blocking=False)
    base = f"{service.url}/{name}"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(base + "/healthz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        yield base
    finally:
        serve.delete(name)


class ShardSpy:
    """Stands in for a shard actor handle: `handle.method.remote(*args)` calls the real actor
    and records (method, shard, args, answer)."""

    def __init__(self, handle, shard: int, calls: list):
        self._handle, self._shard, self._calls = handle, shard, calls

    def __getattr__(self, method: str):
        real, shard, calls = getattr(self._handle, method), self._shard, self._calls

        class _Method:
            @staticmethod
            def remote(*args):
                ref = real.remote(*args)

                async def answer():
                    result = await ref
                    calls.append((method, shard, args, result))
                    return result

                return answer()

        return _Method


def held_in_memory(tracker, op_ids: list[str]) -> list[bool]:
    """Whether the TrackerActor holds each operation in memory (read inside the actor with
    Ray's __ray_call__: no test-only method in production code)."""
    return ray.get(tracker.__ray_call__.remote(lambda actor, ids: [i in actor.core.ops for i in ids], op_ids),
                   timeout=60)


def kill9_and_wait_restart(actor, timeout_s: float = 120) -> int:
    """kill -9 an actor's process and wait until Ray has restarted it (a new pid answers);
    returns the new pid."""
    import os
    import signal

    pid = ray.get(actor.pid.remote(), timeout=60)
    os.kill(pid, signal.SIGKILL)
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            new = ray.get(actor.pid.remote(), timeout=30)
            if new != pid:
                return new
        except Exception:  # noqa: BLE001 - dead, or still starting
            time.sleep(0.5)
    raise AssertionError(f"the actor killed with -9 (pid {pid}) did not restart within {timeout_s:.0f}s")


def wait_until(predicate, timeout_s: float, what: str, explain=None):
    """The predicate's first true value, polled every 0.5 s (HTTP errors count as not yet);
    AssertionError naming `what` after `timeout_s`, with `explain()` appended if given (what
    the service said: a failure seen only on CI must carry its cause in the report)."""
    import httpx

    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    detail = ""
    if explain is not None:
        try:
            detail = f"\n{explain()}"
        except Exception as exc:  # noqa: BLE001 - the explanation must not hide the failure
            detail = f"\n(no explanation: {type(exc).__name__}: {exc})"
    raise AssertionError(f"{what} not within {timeout_s:.0f}s{detail}")
