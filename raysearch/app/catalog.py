"""The catalog of indexes: each index's record in MongoDB (settings, shard count), read,
checked and cached, and the shard clients a search or a write needs.

Every MongoDB call runs in a thread (asyncio.to_thread): a slow database call must not
stall the other requests an ingress replica's event loop is serving. A record is cached
for META_TTL_S: fields may be declared through another replica or a driver's client.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from raysearch import indexmeta
from raysearch.actors.clients import Cluster
from raysearch.app.aliases import AliasBook
from raysearch.errors import AlreadyExists, Conflict, IndexBeingDeleted, IndexNotFound, InvalidRequest
from raysearch.ingest import validation
from raysearch.models import FieldSettings, IndexSettings
from raysearch import schema
from raysearch.search.coordinator import IndexTarget
from raysearch.storage.mongo import MongoStore

META_TTL_S = 2.0  # how stale a replica's copy of an index's settings may be


class IndexCatalog:
    def __init__(self, settings, mongo: MongoStore, cluster: Cluster):
        self.settings, self.mongo, self.cluster = settings, mongo, cluster
        self._indexes: dict[str, tuple[dict, IndexTarget]] = {}  # name -> (record, what a search needs)
        self._checked: dict[str, float] = {}  # name -> when its record was last read
        self.aliases = AliasBook(mongo, lambda name: mongo.get_index_meta(name) is not None)

    async def index(self, name: str) -> tuple[dict, IndexTarget]:
        """(record, IndexTarget: settings, analyzer, shard clients) of an existing index, or
        of the index an alias stands for; IndexNotFound otherwise, IndexBeingDeleted while a
        DELETE of it runs."""
        name = await self.aliases.resolve(name) or name
        cached = self._indexes.get(name)
        if cached is not None and time.monotonic() - self._checked.get(name, 0.0) <= META_TTL_S:
            return cached
        return await asyncio.to_thread(self.load, name)

    def load(self, name: str) -> tuple[dict, IndexTarget]:
        """Blocking: read the record and resolve the shards (threads, readiness)."""
        meta = self.mongo.get_index_meta(name)
        self._checked[name] = time.monotonic()
        cached = self._indexes.get(name)
        if meta is None or meta.get("deleting"):
            self._indexes.pop(name, None)
            if meta is None:
                raise IndexNotFound(f"no such index: {name!r}")
            raise IndexBeingDeleted(f"index {name!r} is being deleted; retry once the deletion has finished")
        if cached is not None and meta == cached[0]:
            return cached
        settings, analyzer, shards = indexmeta.parse(meta)  # CorruptIndex (503) naming it; not cached
        cached = (meta, IndexTarget(name, settings, analyzer, self.cluster.shards(name, shards)))
        self._indexes[name] = cached
        return cached

    def forget(self, name: str) -> None:
        self._indexes.pop(name, None)
        self._checked.pop(name, None)

    async def ensure_index(self, name: str, body: dict | None = None) -> tuple[dict, IndexTarget]:
        """The index, created with `body` (default settings if None) when it does not exist
        (a bulk or a PUT of a document auto-creates its index)."""
        try:
            return await self.index(name)  # an alias: its index (writes never create one by an alias's name)
        except IndexNotFound:
            await self.create_index(name, body, must_be_new=False)
            return await self.index(name)

    async def resolve(self, name: str) -> str:
        """The index an alias stands for; any other name as it is."""
        return await self.aliases.resolve(name) or name

    async def records(self) -> list[dict]:
        """Every index record but those being deleted."""
        return [m for m in await asyncio.to_thread(self.mongo.list_index_metas) if not m.get("deleting")]

    async def create_index(self, name: str, body: dict | None, must_be_new: bool = True) -> dict:
        validation.check_index_name(name)
        if await self.aliases.resolve(name) is not None:
            raise InvalidRequest(f"{name!r} is an alias; an index needs a name no alias has")
        body = dict(body or {})
        body.setdefault("shards", self.settings.shards)
        try:
            settings = IndexSettings(**body)
            indexmeta.build(settings)  # everything derived from the settings, before anything is stored
        except Exception as exc:
            raise InvalidRequest(f"invalid index settings: {validation.pydantic_reason(exc)}") from None
        created = await asyncio.to_thread(self.mongo.create_index_meta, name, settings.stored(), settings.shards)
        if not created and must_be_new:
            raise AlreadyExists(f"index {name!r} already exists")
        self._checked.pop(name, None)
        meta, _ = await self.index(name)
        return {"index": name, "settings": meta["settings"]}

    async def put_fields(self, name: str, body: dict | None) -> dict:
        """Declare fields later (`PUT /indexes/{index}/fields`); a declared type never changes.
        Checked whole before it is stored; stored with a compare-and-set on the old settings."""
        validation.check_index_name(name)
        if not isinstance(body, dict) or not body:
            raise InvalidRequest("the body must be an object of fields: {name: {\"type\": ..., \"boost\": ...}}")
        for _ in range(5):
            meta = await asyncio.to_thread(self.mongo.get_index_meta, name)
            if meta is None:
                raise IndexNotFound(f"no such index: {name!r}")
            if meta.get("deleting"):
                raise IndexBeingDeleted(f"index {name!r} is being deleted; retry once the deletion has finished")
            current = dict(meta["settings"])
            fields = dict(current.get("fields") or {})
            for field, spec in body.items():
                try:
                    schema.check_field_name(field)
                    declared = FieldSettings(**spec) if isinstance(spec, dict) else None
                except Exception as exc:
                    raise InvalidRequest(f"field {str(field)[:40]!r}: {validation.pydantic_reason(exc)}") from None
                if declared is None:
                    raise InvalidRequest(f"field {field!r}: expected an object like {{\"type\": \"keyword\"}}")
                old = fields.get(field)
                if old is not None and old.get("type", schema.TEXT) != declared.type:
                    raise InvalidRequest(f"field {field!r} is already declared as {old.get('type', schema.TEXT)!r}; "
                                         f"a declared field's type never changes")
                if old is not None and declared.type == schema.VECTOR and (
                        old.get("dims"), old.get("similarity")) != (declared.dims, declared.similarity):
                    raise InvalidRequest(f"vector field {field!r} is declared with dims {old.get('dims')} and "
                                         f"similarity {old.get('similarity')!r}; they never change")
                fields[field] = declared.stored()
            try:
                new = IndexSettings.from_record({**current, "fields": fields}).stored()
            except Exception as exc:
                raise InvalidRequest(f"invalid fields: {validation.pydantic_reason(exc)}") from None
            if new == meta["settings"] or await asyncio.to_thread(
                    self.mongo.replace_index_settings, name, meta["settings"], new):
                self.forget(name)
                meta, _ = await self.index(name)
                return {"index": name, "settings": meta["settings"]}
        raise Conflict(f"the settings of index {name!r} kept changing; retry")

    async def delete_index(self, name: str, before_drop=None) -> None:
        """Delete an index and everything of it (shards, chunks, intake batches, record).

        The record is first marked `deleting` with a token of this call, and removed last,
        only if it still carries that token: while the deletion runs, a bulk or PUT to the
        same name is refused (409, IndexBeingDeleted) instead of auto-creating a new index
        whose record, intake batches or shard actors the cleanup would then wipe.
        `before_drop` (async, optional) runs once the record is marked."""
        target = await self.aliases.resolve(name)
        if target is not None:
            raise InvalidRequest(f"{name!r} is an alias of {target!r}: DELETE /aliases/{name} removes the alias, "
                                 f"DELETE /indexes/{target} the index")
        token = uuid.uuid4().hex
        state, meta = await asyncio.to_thread(self.mongo.mark_index_deleting, name, token)
        if state == "missing":
            raise IndexNotFound(f"no such index: {name!r}")
        if state == "busy":
            raise IndexBeingDeleted(f"index {name!r} is already being deleted")
        self.forget(name)
        try:
            count = indexmeta.parse(meta)[2]
        except indexmeta.CorruptIndex:  # its shard count is unreadable: its shard actors are found by name
            count = None
        if before_drop is not None:
            await before_drop()
        count = await self.cluster.drop_index(name, count)
        await asyncio.to_thread(self.mongo.delete_index, name, count, token)
        await self.aliases.drop_index(name)
        self.forget(name)
