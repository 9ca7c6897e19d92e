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
from raysearch.config import Settings
from raysearch.search.knn import KnnQuery
from raysearch.search.plan import QueryPlan


class RayShard:
    def __init__(self, handle, calls_in_flight: int = 2):
        self.handle = handle  # a ShardStore actor handle
        self._searches = _Grouped(handle, calls_in_flight)

    # ------------------------------------------------ search (ShardClient)
    async def stats(self, fields: list[str], pairs: list, prefixes: list, max_expansions: int,
                    fuzzy: list = ()) -> dict:
        return await self.handle.stats.remote(fields, pairs, prefixes, max_expansions, fuzzy)

    async def search(self, plan: QueryPlan, k: int) -> dict:
        return await self._searches.search(plan, k)

    async def knn(self, query: KnnQuery) -> list:
        return await self.handle.knn.remote(query)

    async def dictionary(self, max_terms: int) -> dict:
        return await self.handle.dictionary.remote(max_terms)

    async def get_documents(self, doc_ids: list[str]) -> list[bytes | None]:
        return await self.handle.get_documents.remote(doc_ids)

    async def fields(self) -> list[str]:
        return await self.handle.fields.remote()

    # ------------------------------------------------------------ admin
    async def get_document(self, doc_id: str) -> bytes | None:
        return await self.handle.get_document.remote(doc_id)

    async def info(self) -> dict:
        return await self.handle.info.remote()

    async def verify(self) -> dict:
        return await self.handle.verify.remote()

    async def rebuild(self) -> dict:
        return await self.handle.rebuild.remote()

    def ping(self):
        """The ObjectRef of a ping (readiness waits on many at once)."""
        return self.handle.ping.remote()


class _Grouped:
    """A shard's query phases, grouped under load: while `limit` calls to the shard are in
    flight, further searches wait and go out together, as one `search_many` call, as soon
    as one returns. Under concurrent searches Ray's per-call costs (submitting, running the
    task, the reply) are then paid once per group; a lone search goes out at once, so a
    sequential client sees no delay."""

    def __init__(self, handle, limit: int):
        self.handle, self.limit = handle, max(1, limit)
        self.in_flight = 0
        self.waiting: list[tuple[tuple[QueryPlan, int], asyncio.Future]] = []
        self._tasks: set[asyncio.Task] = set()  # the group calls running (a task needs a reference)

    async def search(self, plan: QueryPlan, k: int) -> dict:
        if self.in_flight < self.limit:
            self.in_flight += 1
            try:
                return await self.handle.search.remote(plan, k)
            finally:
                self.in_flight -= 1
                self._send_waiting()
        answer = asyncio.get_running_loop().create_future()
        self.waiting.append(((plan, k), answer))
        return await answer

    def _send_waiting(self) -> None:
        self.waiting = [(args, answer) for args, answer in self.waiting if not answer.done()]  # given up
        if not self.waiting or self.in_flight >= self.limit:
            return
        group, self.waiting = self.waiting, []
        self.in_flight += 1
        task = asyncio.get_running_loop().create_task(self._send(group))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, group: list) -> None:
        try:
            answers = await self.handle.search_many.remote([args for args, _ in group])
        except Exception as exc:  # the whole call failed (shard unavailable, actor died): each search's error
            for _, answer in group:
                if not answer.done():
                    answer.set_exception(exc)
        except BaseException:  # cancelled (the loop is closing): so are the searches waiting on it
            for _, answer in group:
                answer.cancel()
            raise
        else:
            for (_, answer), result in zip(group, answers):
                if answer.done():
                    continue
                if isinstance(result, BaseException):
                    answer.set_exception(result)
                else:
                    answer.set_result(result)
        finally:
            self.in_flight -= 1
            self._send_waiting()


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

    async def pending_batches(self) -> int:
        return await self.handle.pending_batches.remote()

    async def admission(self, index: str) -> tuple[int, str | None]:
        return tuple(await self.handle.admission.remote(index))

    async def in_flight(self) -> dict:
        return await self.handle.in_flight.remote()

    async def freeze(self, index: str, token: str) -> float:
        return await self.handle.freeze.remote(index, token)

    async def thaw(self, index: str, token: str) -> None:
        await self.handle.thaw.remote(index, token)

    async def settled_before(self, index: str, token: str) -> tuple[bool, list[str]]:
        return tuple(await self.handle.settled_before.remote(index, token))

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
        return [RayShard(h, self.settings.shard_calls_in_flight) for h in shard_handles(self.settings, index, count)]

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
