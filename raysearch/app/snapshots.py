"""Snapshots of an index (storage/snapshot_files.py on disk) and their restore as a new index.

A snapshot is a cut between operations, never half of one:

1. the tracker freezes the index at a time T (ops/tracker.py `freeze`): operations accepted
   from T on are held -- still accepted, durable in the intake log, just not indexed yet;
2. the snapshot waits until every operation accepted before T is finished (its batches
   indexed and persisted to MongoDB), and has the persistence actor drain what is left;
3. it reads each shard's persisted state from MongoDB (the system of record) into the
   snapshot's files, then checks the freeze still holds (a tracker restarted meanwhile
   would have lost it: the snapshot then fails with a 503 and can be taken again), and
   thaws the index: the held operations run.

So a snapshot holds exactly the operations accepted before it started -- those finished
by then and those it waited for (the manifest names these) -- and none accepted after.
Operations cannot be taken out half-applied (storage keeps no versions), which is why it
waits for those in flight instead of leaving them out.

A restore writes the payloads back as a new index's MongoDB chunks, then creates the
index: its shards start empty and rebuild themselves from those chunks, as after a lost
disk; they then answer searches identically and pass `verify`.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from raysearch import indexmeta
from raysearch.app.holds import wait_settled
from raysearch.errors import AlreadyExists, InvalidRequest, Unavailable
from raysearch.index.encoding import columnar_count, columnar_weights
from raysearch.index.keys import POSTING
from raysearch.ingest import validation
from raysearch.storage import snapshot_files as files
from raysearch.storage.mongo import ChunksChanged

SETTLE_TIMEOUT_S = 3600.0  # how long a snapshot waits for the operations before its cut
RESTORE_PAGE = 64  # chunks written per MongoDB call on restore


class Snapshots:
    def __init__(self, catalog, tracker, persistence, mongo):
        self.catalog, self.tracker, self.persistence, self.mongo = catalog, tracker, persistence, mongo

    async def take(self, index: str, path: str) -> dict:
        meta, target = await self.catalog.index(index)
        name = target.name
        try:
            await asyncio.to_thread(files.prepare, path)
        except (files.SnapshotError, OSError) as exc:
            raise InvalidRequest(f"snapshot path: {exc}") from None
        token = uuid.uuid4().hex
        cut = await self.tracker.freeze(name, token)
        lost = f"the snapshot of {name!r} lost its cut (the tracker restarted); take it again"
        try:
            waited = await wait_settled(self.tracker, name, token, lost, SETTLE_TIMEOUT_S)
            await self.persistence.flush()  # anything a failed batch left applied is in MongoDB too
            shards = meta["shards"]
            written = {}
            for n in range(shards):
                written[str(n)] = await asyncio.to_thread(self._copy_shard, name, n, path)
            frozen, _ = await self.tracker.settled_before(name, token)
            if not frozen:
                raise Unavailable(lost)
        finally:
            await self.tracker.thaw(name, token)
        info = await asyncio.gather(*[s.info() for s in target.shards])
        manifest = {
            "index": name, "settings": meta["settings"], "shards": shards,
            "cut_at": cut, "finished_at": time.time(),
            "documents": sum(i["documents"] for i in info),
            "operations": {"includes": "every operation accepted before cut_at, none after",
                           "waited_for": sorted(waited)},
            "files": written,
        }
        await asyncio.to_thread(files.write_manifest, path, manifest)
        return {"snapshot": path, **manifest}

    def _copy_shard(self, index: str, n: int, path: str) -> dict:
        for attempt in range(5):
            try:
                return files.write_shard(path, n, self.mongo.iter_chunks(index, n))
            except ChunksChanged:  # compacted while read: read again (nothing new is written meanwhile)
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    async def restore(self, path: str, name: str | None) -> dict:
        try:
            manifest = await asyncio.to_thread(files.read_manifest, path)
            shards = int(manifest["shards"])
            for n in range(shards):
                await asyncio.to_thread(files.check_shard, path, n, manifest["files"][str(n)])
        except files.SnapshotError as exc:
            raise InvalidRequest(str(exc)) from None
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidRequest(f"the snapshot's manifest at {path!r} is incomplete: {exc}") from None
        name = name or manifest["index"]
        validation.check_index_name(name)
        if await self.catalog.resolve(name) != name or await asyncio.to_thread(self.mongo.get_index_meta, name):
            raise AlreadyExists(f"index or alias {name!r} already exists; restore under another name (--as)")
        settings = dict(manifest["settings"], shards=shards)
        try:
            indexmeta.parse({"_id": name, "settings": settings, "shards": shards})
        except indexmeta.CorruptIndex as exc:
            raise InvalidRequest(f"the snapshot's settings: {exc}") from None
        # The chunks first, the index last: its shards start on the first request and rebuild
        # themselves from whatever MongoDB holds for them then.
        await asyncio.to_thread(self.mongo.delete_chunks, name, shards)  # leftovers of an unfinished restore
        for n in range(shards):
            await asyncio.to_thread(self._restore_shard, path, name, n)
        await self.catalog.create_index(name, settings)
        _, target = await self.catalog.index(name)
        info = await asyncio.gather(*[s.info() for s in target.shards])
        return {"index": name, "from": path, "documents": sum(i["documents"] for i in info),
                "snapshot_documents": manifest.get("documents"), "cut_at": manifest.get("cut_at")}

    def _restore_shard(self, path: str, index: str, n: int) -> None:
        seq, page = 0, []
        for payload in files.read_shard(path, n):
            postings = int(columnar_weights(payload, POSTING[0]).sum())
            page.append((columnar_count(payload), postings, payload))
            if len(page) >= RESTORE_PAGE:
                self.mongo.write_chunks(index, n, seq, page)
                seq, page = seq + len(page), []
        if page:
            self.mongo.write_chunks(index, n, seq, page)
