"""The actors as the layers above see them: plain async objects (one per actor kind),
so that the application (app/), the HTTP layers and the drivers never call `.remote`
themselves and can be read, and tested, without knowing Ray.

- RayShard: a ShardStore, behind the coordinator's ShardClient protocol (search reads)
  with the shard's administrative calls beside it;
- TrackerClient, PersistenceClient: the two singletons;
- Cluster: where every handle comes from, and the calls that span actor kinds
  (readiness pings, dropping an index's shards).
"""

from __future__ import annotations

import asyncio
import time

import ray

from raysearch.actors import names
from raysearch.actors.index_worker import workers as worker_handles
from raysearch.actors.persistence import persistence as persistence_handle
from raysearch.actors.shard_store import shards as shard_handles
from raysearch.actors.tracker import tracker as tracker_handle
from raysearch.actors.wire import WireClient, WireUnavailable
from raysearch.config import Settings
from raysearch.ops.tracker import Admission
from raysearch.search.knn import KnnQuery
from raysearch.search.plan import QueryPlan


WIRE_ASK_EVERY_S = 1.0


class RayShard:
    """A search's calls go over the shard's wire (actors/wire.py: a kept-open TCP
    connection, ~0.04 ms a call against ~1 ms through Ray) when it has one; through Ray
    when the wire is off (`wire=False`), not known yet, or fails: then the next call asks
    the actor for its wire again (it may have restarted elsewhere), at most once a second."""

    def __init__(self, handle, wire: bool = True):
        self.handle = handle  # a ShardStore actor handle
        self._use_wire = wire
        self._wire: WireClient | None = None
        self._wire_asked = -WIRE_ASK_EVERY_S  # when the actor was last asked for its wire

    # ------------------------------------------------ search (ShardClient)
    async def stats(self, fields: list[str], pairs: list, prefixes: list, max_expansions: int,
                    fuzzy: list = ()) -> dict:
        return await self._read("stats", fields, pairs, prefixes, max_expansions, fuzzy)

    async def search(self, plan: QueryPlan, k: int) -> dict:
        return await self._read("search", plan, k)

    async def knn(self, query: KnnQuery) -> list:
        return await self._read("knn", query)

    async def hybrid(self, plan: QueryPlan, window: int, query: KnnQuery, fetch_top: int = 0) -> dict:
        return await self._read("hybrid", plan, window, query, fetch_top)

    async def dictionary(self, max_terms: int) -> dict:
        return await self._read("dictionary", max_terms)

    async def get_documents(self, doc_ids: list[str]) -> list[bytes | None]:
        return await self._read("get_documents", doc_ids)

    async def fields(self) -> list[str]:
        return await self._read("fields")

    async def _read(self, method: str, *args):
        wire = self._wire or await self._ask_wire()
        if wire is not None:
            try:
                return await wire.call(method, *args)
            except WireUnavailable:  # the process behind it is gone or restarting: Ray knows
                self._wire = None
        return await getattr(self.handle, method).remote(*args)

    async def _ask_wire(self) -> WireClient | None:
        now = time.monotonic()
        if not self._use_wire or now - self._wire_asked < WIRE_ASK_EVERY_S:
            return None
        self._wire_asked = now
        try:
            host, port, token = await self.handle.wire_address.remote()
        except Exception:  # noqa: BLE001 - the actor is away: the Ray call that follows says why
            return None
        self._wire = WireClient((host, port), token)
        return self._wire

    # ------------------------------------------------------------ admin
    async def get_document(self, doc_id: str) -> bytes | None:
        return await self._read("get_document", doc_id)

    async def info(self) -> dict:
        return await self._read("info")

    async def documents_page(self, after: str | None, limit: int) -> list[tuple[str, bytes]]:
        return await self.handle.documents_page.remote(after, limit)

    async def verify(self) -> dict:
        return await self.handle.verify.remote()

    async def rebuild(self) -> dict:
        return await self.handle.rebuild.remote()

    def ping(self):
        """The ObjectRef of a ping (readiness waits on many at once)."""
        return self.handle.ping.remote()


class TrackerClient:
    """The TrackerActor's calls (actors/tracker.py), awaited."""

    def __init__(self, handle):
        self.handle = handle

    async def create(self, op_id: str, index: str, batch_docs: list[int], errors: list[dict],
                     webhook: str | None = None, kind: str = "bulk", may_exist: bool = True) -> dict:
        return await self.handle.create.remote(op_id, index, batch_docs, errors, webhook, kind, may_exist=may_exist)

    async def get(self, op_id: str) -> dict | None:
        return await self.handle.get.remote(op_id)

    async def list(self, index: str | None, limit: int, after: str | None) -> dict:
        return await self.handle.list.remote(index, limit, after)

    async def retry(self, op_id: str) -> dict | None:
        return await self.handle.retry.remote(op_id)

    async def wait_indexed(self, op_id: str) -> dict | None:
        return await self.handle.wait_indexed.remote(op_id)

    async def admission(self, index: str) -> Admission:
        return Admission(*await self.handle.admission.remote(index))

    async def in_flight(self) -> dict:
        return await self.handle.in_flight.remote()

    async def freeze(self, index: str, token: str) -> float:
        return await self.handle.freeze.remote(index, token)

    async def thaw(self, index: str, token: str) -> None:
        await self.handle.thaw.remote(index, token)

    async def settled_before(self, index: str, token: str) -> tuple[bool, list[str]]:
        return tuple(await self.handle.settled_before.remote(index, token))

    async def held_after(self, index: str, token: str) -> tuple[bool, list[str]]:
        return tuple(await self.handle.held_after.remote(index, token))

    async def forget_index(self, index: str) -> None:
        await self.handle.forget_index.remote(index)

    def ping(self):
        return self.handle.ping.remote()


class PersistenceClient:
    """The PersistenceActor's calls (actors/persistence.py), awaited; `status` and `ping`
    run in its control group, so they answer while a flush runs."""

    def __init__(self, handle):
        self.handle = handle

    async def flush(self) -> int:
        return await self.handle.flush.remote()

    async def forget_index(self, index: str) -> None:
        await self.handle.forget_index.remote(index)

    async def status(self, timeout_s: float) -> dict:
        return await asyncio.wait_for(self.handle.status.remote(), timeout_s)

    def status_now(self, timeout_s: float) -> dict:
        """Blocking (readiness runs on its own thread)."""
        return ray.get(self.handle.status.remote(), timeout=timeout_s)

    def ping(self):
        return self.handle.ping.remote()


class Cluster:
    """Every actor handle of a service, from its settings (get-or-create by name)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.tracker = TrackerClient(tracker_handle(settings))
        self.persistence = PersistenceClient(persistence_handle(settings))
        worker_handles(settings)  # started with the service (the tracker resolves them by name too)

    def shards(self, index: str, count: int) -> list[RayShard]:
        """Blocking (actor lookups): the index's shards, started where missing."""
        return [RayShard(h) for h in shard_handles(self.settings, index, count)]

    def pings(self) -> list[tuple[str, object]]:
        """(name, ObjectRef of its ping) of the tracker, the persistence actor and every worker.
        Workers are looked up by name each time: a handle kept from before a restart of a
        worker for good (tests replace them) would never answer."""
        out = [("tracker", self.tracker.ping()), ("persistence", self.persistence.ping())]
        out += [(f"worker {i}", w.ping.remote()) for i, w in enumerate(worker_handles(self.settings))]
        return out

    @staticmethod
    def wait_pings(pings: list[tuple[str, object]], timeout_s: float) -> list[str]:
        """Blocking: the names of those that did not answer within the timeout."""
        refs = [ref for _, ref in pings]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
        ready = set(ready)
        return [name for name, ref in pings if ref not in ready]

    async def drop_index(self, index: str, count: int | None) -> int:
        """Drop the index's shards (their data), kill them for good, and make every worker
        and the tracker forget the index; returns how many shards it had. `count` None: the
        record could not say, so the shard actors are found by name."""
        if count is None:
            handles = [h for h in map(names.find, names.shard_names_of(index)) if h is not None]
            count = len(handles)
        else:
            handles = shard_handles(self.settings, index, count)
        await asyncio.gather(*[h.drop.remote() for h in handles])
        for h in handles:
            ray.kill(h, no_restart=True)
        await asyncio.gather(*[w.forget_index.remote(index) for w in worker_handles(self.settings)])
        await self.tracker.forget_index(index)
        await asyncio.to_thread(_wait_names_free, [names.shard_name(index, n) for n in range(count)])
        return count


def _wait_names_free(actor_names: list[str], timeout_s: float = 30.0) -> None:
    """Until no live actor holds these names (ray.kill is asynchronous): an index created
    again under the same name then gets new shard actors, never the dying ones."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(names.find(n) is not None for n in actor_names):
        time.sleep(0.05)
