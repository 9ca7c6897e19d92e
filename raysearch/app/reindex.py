"""Reindex: an index's stored documents into a new index with its own settings (a new
analyzer, new field types), while the source keeps serving searches; then, if asked, an
alias switched to the new index.

How writes made meanwhile are kept (chosen over writing to both indexes, which cannot
order a copied old version against a newer write of the same id):

1. the tracker holds the source's writes from a cut (ops/tracker.py `freeze`, as a
   snapshot does): they are accepted as always (202, durable in the intake log), not yet
   applied; the reindex waits until those accepted before the cut are applied;
2. it copies every stored document, shard by shard in id order, into the destination
   through the normal bulk path (durable, tracked, its operations listed in the record);
3. it replays the held writes on the destination, one operation at a time in the order
   they were accepted (each indexed before the next), until none is left;
4. it switches the alias (if one is named), replays whatever was held on the source
   until no new write has come for a few seconds (other replicas learn the alias within
   2 s), and releases the hold: the held writes then apply to the source as well.

A client that waits for a write to be indexed before writing the same id again (the one
way to order writes here: a 202 does not order them) therefore finds its writes on the
destination in its order. The hold is a lease the reindex renews (ops/tracker.py): if the
replica driving it dies, the source's writes go on after FREEZE_LEASE_S, and the record
reads `failed` (abandoned) once its heartbeat is that old.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import orjson

from raysearch.app.holds import wait_settled
from raysearch.errors import (
    InvalidRequest,
    NotFound,
    Overloaded,
    RaySearchError,
    Unavailable,
)
from raysearch.index.batch import decode_payload
from raysearch.ingest import validation
from raysearch.ops.tracker import FREEZE_LEASE_S

log = logging.getLogger("raysearch.reindex")
PAGE = 2000  # documents read from a shard, and posted to the destination, at a time
QUIET_S = 3.0  # after the alias switch: no new held write for this long ends the replay
NDJSON = "application/x-ndjson"


class Reindexer:
    def __init__(self, catalog, tracker, ingest, mongo):
        self.catalog, self.tracker, self.ingest, self.mongo = catalog, tracker, ingest, mongo
        self._running: dict[str, asyncio.Task] = {}

    async def start(self, source: str, body: dict) -> dict:
        """Checks the request, creates the destination, and starts the reindex: its record."""
        dest, settings, alias = body.get("dest"), body.get("settings"), body.get("alias")
        if not isinstance(dest, str) or not dest:
            raise InvalidRequest('expected {"dest": "new-index", "settings": {...}, "alias": "name"?}')
        validation.check_index_name(dest)
        if settings is not None and not isinstance(settings, dict):
            raise InvalidRequest("reindex: settings must be an object (the destination's index settings)")
        if alias is not None and (not isinstance(alias, str) or not alias):
            raise InvalidRequest("reindex: alias must be a name")
        _, target = await self.catalog.index(source)
        if dest == target.name:
            raise InvalidRequest("reindex: the destination must be another index than the source")
        await self.catalog.create_index(dest, settings or {}, True)  # 409 if it exists, 400 naming a bad setting
        op_id = uuid.uuid4().hex
        record = {"_id": op_id, "kind": "reindex", "source": target.name, "dest": dest, "alias": alias,
                  "status": "copying", "documents_copied": 0, "copy_operations": [], "writes_replayed": 0,
                  "error": None, "started_at": time.time(), "heartbeat": time.time(), "finished_at": None}
        await asyncio.to_thread(self.mongo.put_reindex, record)
        self._running[op_id] = asyncio.get_running_loop().create_task(self._run(record, target))
        return self.view(record)

    async def get(self, op_id: str) -> dict:
        record = await asyncio.to_thread(self.mongo.get_reindex, op_id)
        if record is None:
            raise NotFound(f"no such reindex operation: {op_id!r}")
        return self.view(record)

    @staticmethod
    def view(record: dict) -> dict:
        out = {"operation_id": record["_id"], **{k: v for k, v in record.items() if k != "_id"}}
        if out["status"] not in ("completed", "failed") and time.time() - out["heartbeat"] > FREEZE_LEASE_S:
            out["status"], out["error"] = "failed", "abandoned: the replica driving it stopped"
        return out

    # ------------------------------------------------------------------ the run
    async def _run(self, record: dict, target) -> None:
        source, dest, token = target.name, record["dest"], record["_id"]
        try:
            await self.tracker.freeze(source, token)
            await wait_settled(self.tracker, source, token, _hold_lost(source))
            await self._copy(record, target, token)
            await self._save(record, status="replaying")
            await self._replay_held(record, source, token, quiet_s=0.0)
            if record["alias"]:
                await self.catalog.aliases.apply([{"add": {"alias": record["alias"], "index": dest}}])
                await self._replay_held(record, source, token, quiet_s=QUIET_S)
            await self._save(record, status="completed", finished_at=time.time())
        except Exception as exc:  # noqa: BLE001 - the record says why; the source is untouched
            log.warning("reindex %s -> %s failed: %s", source, dest, exc, exc_info=True)
            reason = exc.reason if isinstance(exc, RaySearchError) else f"{type(exc).__name__}: {exc}"
            await self._save(record, status="failed", error=reason[:2000], finished_at=time.time())
        finally:
            try:
                await self.tracker.thaw(source, token)
            finally:
                self._running.pop(token, None)

    async def _copy(self, record: dict, target, token: str) -> None:
        ops = []
        for shard in target.shards:
            after = None
            while True:
                page = await shard.documents_page(after, PAGE)
                if not page:
                    break
                after = page[-1][0]
                accepted = await self._bulk(record["dest"], b"\n".join(raw for _, raw in page))
                ops.append(accepted["operation_id"])
                record["documents_copied"] += accepted["documents"]
                frozen, _ = await self.tracker.settled_before(target.name, token)  # renews the hold
                if not frozen:
                    raise Unavailable(_hold_lost(target.name))
                await self._save(record, copy_operations=ops)
        for op_id in ops:
            await self._wait_indexed(op_id)

    async def _replay_held(self, record: dict, source: str, token: str, quiet_s: float) -> None:
        """Replay, in order, the writes held on the source, until none is new (for `quiet_s`)."""
        done: set[str] = set(record.get("replayed", ()))
        last_new = time.monotonic()
        while True:
            frozen, held = await self.tracker.held_after(source, token)
            if not frozen:
                raise Unavailable(_hold_lost(source))
            todo = [op_id for op_id in held if op_id not in done]
            for op_id in todo:
                await self._replay(record["dest"], op_id)
                done.add(op_id)
                record["writes_replayed"] += 1
            if todo:
                last_new = time.monotonic()
                await self._save(record)
            elif time.monotonic() - last_new >= quiet_s:
                record["replayed"] = sorted(done)
                return
            else:
                await asyncio.sleep(0.2)

    async def _replay(self, dest: str, op_id: str) -> None:
        """One held operation's documents and deletes, applied to the destination."""
        view = await self.tracker.get(op_id)
        if view is None:
            return
        docs: list[bytes] = []
        deletes: list[str] = []
        for batch in range(view["batches"]["total"]):
            raw = await asyncio.to_thread(self.mongo.get_batch, op_id, batch)
            if raw is None:  # applied and persisted already (not held after all): nothing to carry
                continue
            batch_docs, batch_deletes, _, _ = decode_payload(raw)
            docs += [orjson.dumps(d, option=orjson.OPT_SERIALIZE_NUMPY) for d in batch_docs]
            deletes += batch_deletes
        if docs:
            await self._wait_indexed((await self._bulk(dest, b"\n".join(docs)))["operation_id"])
        if deletes:
            accepted = await self.ingest.submit(dest, [], deletes, [], kind="delete")
            await self._wait_indexed(accepted["operation_id"])

    async def _bulk(self, dest: str, body: bytes) -> dict:
        while True:
            try:
                return await self.ingest.bulk(dest, body, NDJSON)
            except Overloaded:  # the destination's backlog is full: wait for it, as a client would
                await asyncio.sleep(1.0)

    async def _wait_indexed(self, op_id: str) -> None:
        while True:
            view = await self.tracker.wait_indexed(op_id)
            if view is None or view["status"] in ("completed", "partially_completed", "failed", "persisting"):
                return
            batches = view["batches"]
            if batches["indexed"] + batches.get("failed", 0) >= batches["total"]:
                return

    async def _save(self, record: dict, **changes) -> None:
        record.update(changes, heartbeat=time.time())
        await asyncio.to_thread(self.mongo.put_reindex, record)


def _hold_lost(index: str) -> str:
    return f"the hold on {index!r}'s writes was lost (the tracker restarted?)"
