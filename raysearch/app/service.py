"""What the endpoints do, as plain async methods: indexes, bulk operations, documents,
search, readiness and maintenance. The FastAPI layer (serve/app.py) and the
Elasticsearch layer only map HTTP to these calls and errors to status codes; the
in-cluster client calls them directly.

It composes the parts that do the work: the catalog of indexes (app/catalog.py), the
ingest path (ingest/intake.py), the search coordinator (search/coordinator.py) and
the actors' clients (actors/clients.py).
"""

from __future__ import annotations

import asyncio
import time

import orjson

from raysearch import indexmeta, metrics, schema
from raysearch.actors.clients import Cluster
from raysearch.app.catalog import IndexCatalog
from raysearch.app.reindex import Reindexer
from raysearch.app.snapshots import Snapshots
from raysearch.config import Settings
from raysearch.errors import IndexBeingDeleted, IndexNotFound, InvalidRequest, NotFound, PayloadTooLarge
from raysearch.index.routing import shard_for
from raysearch.ingest import decoding, validation
from raysearch.ingest.intake import Ingest
from raysearch.models import SearchRequest
from raysearch.ops import paging
from raysearch.search.coordinator import IndexTarget, SearchCoordinator, SearchLimits
from raysearch.status import Readiness
from raysearch.storage.mongo import MongoStore

READY_PING_TIMEOUT_S = 10.0  # an actor that does not answer a ping within this is reported
STATUS_TIMEOUT_S = 5.0  # /stats does not wait longer than this for the persistence actor
MAX_OPERATIONS_PAGE = 1000  # GET /bulk-operations?limit=


class SearchService:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.mongo = MongoStore(settings.mongo_uri, settings.mongo_db)
        self.mongo.ensure_schema()
        self.cluster = Cluster(settings)
        self.tracker, self.persistence = self.cluster.tracker, self.cluster.persistence
        self.catalog = IndexCatalog(settings, self.mongo, self.cluster)
        self.ingest = Ingest(settings, self.catalog, self.mongo, self.tracker)
        self.coordinator = SearchCoordinator(SearchLimits.of(settings))
        self.snapshots = Snapshots(self.catalog, self.tracker, self.persistence, self.mongo)
        self.reindexer = Reindexer(self.catalog, self.tracker, self.ingest, self.mongo)

    # ------------------------------------------------------------ indexes
    async def index(self, name: str) -> tuple[dict, IndexTarget]:
        return await self.catalog.index(name)

    async def ensure_index(self, name: str, body: dict | None = None) -> tuple[dict, IndexTarget]:
        return await self.catalog.ensure_index(name, body)

    async def create_index(self, name: str, body: dict | None, must_be_new: bool = True) -> dict:
        return await self.catalog.create_index(name, body, must_be_new)

    async def put_fields(self, name: str, body: dict | None) -> dict:
        return await self.catalog.put_fields(name, body)

    async def index_info(self, name: str) -> dict:
        meta, target = await self.catalog.index(name)
        infos = await asyncio.gather(*[s.info() for s in target.shards])
        return {
            "index": target.name,  # an alias's index
            **({"alias": name} if name != target.name else {}),
            "documents": sum(i["documents"] for i in infos),
            "bytes_on_disk": sum(i["bytes_on_disk"] for i in infos),
            "shards": meta["shards"],
            "settings": meta["settings"],
            # distinct terms of each shard's dictionary, summed (a term on several shards counts on
            # each, like Elasticsearch's shard-level statistics): O(shards), not a scan of every term
            "terms": sum(i["terms"] for i in infos),
        }

    async def list_indexes(self) -> dict:
        out = []
        for meta in await self.catalog.records():
            try:
                _, target = await self.catalog.index(meta["_id"])
            except (IndexNotFound, IndexBeingDeleted):  # deleted meanwhile
                continue
            except indexmeta.CorruptIndex as exc:
                out.append({"index": meta["_id"], "error": exc.to_json()["error"]})
                continue
            infos = await asyncio.gather(*[s.info() for s in target.shards])
            out.append({"index": meta["_id"], "documents": sum(i["documents"] for i in infos)})
        return {"indexes": out}

    # ---------------------------------------------------------- snapshots
    async def snapshot(self, index: str, path: str) -> dict:
        return await self.snapshots.take(index, path)

    async def restore_snapshot(self, path: str, name: str | None) -> dict:
        return await self.snapshots.restore(path, name)

    async def reindex(self, source: str, body: dict) -> dict:
        return await self.reindexer.start(source, body)

    async def reindex_status(self, op_id: str) -> dict:
        return await self.reindexer.get(op_id)

    # ------------------------------------------------------------ aliases
    async def aliases(self) -> dict:
        return await self.catalog.aliases.listing()

    async def update_aliases(self, actions) -> dict:
        return await self.catalog.aliases.apply(actions)

    async def delete_index(self, name: str) -> dict:
        async def stop_persisting():  # persistence also skips a record marked deleting
            self.coordinator.forget(name)
            await self.persistence.forget_index(name)

        await self.catalog.delete_index(name, before_drop=stop_persisting)
        return {"acknowledged": True, "index": name}

    # -------------------------------------------------------------- bulk
    async def bulk(self, index: str, body: bytes, content_type: str, operation_id: str | None = None) -> dict:
        return await self.ingest.bulk(index, body, content_type, operation_id)

    async def submit(self, index: str, docs: list[dict], deletes: list[str], errors: list[dict],
                     webhook: str | None = None, kind: str = "bulk", operation_id: str | None = None) -> dict:
        return await self.ingest.submit(index, docs, deletes, errors, webhook, kind, operation_id)

    async def check_backlog(self, index: str) -> None:
        await self.ingest.check_backlog(index)

    async def operation(self, op_id: str) -> dict:
        view = await self.tracker.get(op_id)
        if view is None:
            raise NotFound(f"no such operation: {op_id!r}")
        return view

    async def operations(self, index: str | None, limit: int = 100, after: str | None = None) -> dict:
        """A page of operations, newest first: `{"operations": [...], "next": cursor or null}`."""
        if not 1 <= limit <= MAX_OPERATIONS_PAGE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_OPERATIONS_PAGE}, not {limit}")
        if after is not None:
            try:
                paging.decode_cursor(after)
            except ValueError as exc:
                raise InvalidRequest(f"after: {exc}") from None
        return await self.tracker.list(index, limit, after)

    async def retry(self, op_id: str) -> dict:
        view = await self.tracker.retry(op_id)
        if view is None:
            raise NotFound(f"no such operation: {op_id!r}")
        return view

    async def wait_indexed(self, op_id: str) -> dict | None:
        """The operation once every batch is indexed or failed (or after the tracker's wait)."""
        return await self.tracker.wait_indexed(op_id)

    async def in_flight(self) -> dict:
        return await self.tracker.in_flight()

    # --------------------------------------------------------- documents
    async def get_document(self, index: str, doc_id: str) -> dict:
        _, target = await self.catalog.index(index)
        raw = await target.shards[shard_for(doc_id, len(target.shards))].get_document(doc_id)
        if raw is None:
            raise NotFound(f"no document {doc_id!r} in index {index!r}")
        return {"id": doc_id, "document": orjson.loads(raw)}

    async def put_document(self, index: str, doc_id: str, body: bytes) -> dict:
        validation.check_index_name(index)
        if len(body) > self.settings.max_body_bytes:
            raise PayloadTooLarge(f"request body is {len(body)} bytes; the limit is {self.settings.max_body_bytes}")
        doc = decoding.json_object(body, "document")
        if "id" in doc and doc["id"] != doc_id:
            raise InvalidRequest(f"document id {doc['id']!r} does not match the path id {doc_id!r}")
        doc, _, reason = validation.validate_document({**doc, "id": doc_id}, self.settings.max_doc_bytes)
        if reason:
            raise InvalidRequest(reason)
        _, target = await self.catalog.ensure_index(index)
        reason = schema.type_error(doc, target.types, target.vectors)
        if reason:
            raise InvalidRequest(reason)
        accepted = await self.ingest.submit(index, [doc], [], [], kind="put")
        view = await self.tracker.wait_indexed(accepted["operation_id"])
        return {"id": doc_id, "index": index, "operation_id": accepted["operation_id"], "status": view["status"]}

    async def delete_document(self, index: str, doc_id: str) -> dict:
        await self.get_document(index, doc_id)  # 404 if absent
        accepted = await self.ingest.submit(index, [], [doc_id], [], kind="delete")
        view = await self.tracker.wait_indexed(accepted["operation_id"])
        return {"id": doc_id, "index": index, "deleted": True, "operation_id": accepted["operation_id"],
                "status": view["status"]}

    # ------------------------------------------------------------- search
    async def search(self, index: str, request: SearchRequest) -> dict:
        """The search flow is the coordinator's (search/coordinator.py)."""
        _, target = await self.catalog.index(index)
        result = await self.coordinator.search(target, request)
        metrics.observe("search_latency", result["took_ms"] / 1000, index=index)
        return result

    async def fetch(self, target: IndexTarget, doc_ids: list[str]) -> dict[str, dict]:
        """The stored documents of these ids that exist (a fetch phase)."""
        return await self.coordinator.fetch(target, doc_ids)

    async def known_fields(self, target: IndexTarget) -> set[str]:
        return await self.coordinator.known_fields(target)

    # -------------------------------------------------------- maintenance
    def check_ready(self) -> tuple[Readiness, str]:
        """Blocking: whether MongoDB and every actor answer, as (state, reason).
        serve/readiness.py runs it on its own thread, apart from any request, so a request
        given up by its client can never cancel a ping half-way."""
        try:
            self.mongo.ping()
        except Exception as exc:  # noqa: BLE001 - any failure to reach it is the answer
            return Readiness.MONGO_DOWN, f"MongoDB unreachable: {type(exc).__name__}: {exc}"
        pings = self.cluster.pings()
        corrupt = []
        for meta in self.mongo.list_index_metas():
            if meta.get("deleting"):
                continue
            try:
                _, target = self.catalog.load(meta["_id"])
            except (IndexNotFound, IndexBeingDeleted):  # deleted meanwhile
                continue
            except indexmeta.CorruptIndex as exc:  # named below; the other indexes are still checked
                corrupt.append(exc.reason)
                continue
            pings += [(f"shard {meta['_id']}:{n}", s.ping()) for n, s in enumerate(target.shards)]
        missing = self.cluster.wait_pings(pings, READY_PING_TIMEOUT_S)
        if missing:
            return Readiness.STARTING, f"actors not answering: {', '.join(missing[:10])}"
        status = self.persistence.status_now(READY_PING_TIMEOUT_S)
        if status["last_error"]:
            return Readiness.STARTING, f"persistence failing: {status['last_error']}"
        if corrupt:
            return Readiness.DEGRADED, "; ".join(corrupt)
        return Readiness.READY, "ok"

    async def stats(self) -> dict:
        in_flight = await self.tracker.in_flight()
        try:  # answered apart from the drain (its own concurrency group), bounded all the same
            persistence = await self.persistence.status(STATUS_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - a slow or restarting actor: say so, answer the rest
            persistence = {"error": f"persistence not answering: {type(exc).__name__}"}
        out = {}
        for meta in await self.catalog.records():
            name = meta["_id"]
            try:
                _, target = await self.catalog.index(name)
            except (IndexNotFound, IndexBeingDeleted):
                continue
            except indexmeta.CorruptIndex as exc:
                out[name] = {"error": exc.to_json()["error"]}
                continue
            infos = await asyncio.gather(*[s.info() for s in target.shards])
            flight = in_flight.get(name, {})
            oldest = flight.get("oldest_unpersisted_at")
            out[name] = {
                "documents": sum(i["documents"] for i in infos),
                "dirty_terms": sum(i["pending_changes"] for i in infos),
                "batches_in_flight": flight.get("batches_pending", 0),
                "persistence_lag_batches": flight.get("batches_unpersisted", 0),
                "persistence_lag_seconds": round(time.time() - oldest, 3) if oldest else 0.0,
                "shards": [{"shard": n, **i} for n, i in enumerate(infos)],
            }
        return {"indexes": out, "persistence": persistence}

    async def verify(self, index: str, shard: int | None = None) -> dict:
        """Compare every mirrored entry (posting lists included) in RocksDB with MongoDB.

        Each shard compares itself with MongoDB in bounded memory (ShardStore.verify), one
        shard at a time; `shard` limits it to one (the CLI goes shard by shard to show progress)."""
        meta, target = await self.catalog.index(index)
        if shard is not None and not 0 <= shard < meta["shards"]:
            raise InvalidRequest(f"index {index!r} has shards 0..{meta['shards'] - 1}, not {shard}")
        await self.persistence.flush()
        mismatches, terms_checked, entries_checked, per_shard = [], 0, 0, []
        for n in range(meta["shards"]) if shard is None else [shard]:
            for _ in range(5):
                part = await target.shards[n].verify()
                if not part.get("pending"):
                    break
                await self.persistence.flush()  # a purge of dead postings came after the flush
            if part.get("pending"):  # writes kept coming: nothing compared, so nothing is ok
                part["mismatches"] = [{"reason": f"{part['pending']} changes not yet persisted; verify again"}]
            terms_checked += part["terms"]
            entries_checked += part["entries"]
            mismatches += [{"shard": n, **m} for m in part["mismatches"]]
            per_shard.append({"shard": n, "entries": part["entries"], "terms": part["terms"],
                              "ok": not part["mismatches"], "seconds": part["seconds"]})
        return {"ok": not mismatches, "terms_checked": terms_checked, "entries_checked": entries_checked,
                "shards": per_shard, "mismatches": mismatches[:1000]}

    async def restore(self, index: str, shard: int | None = None) -> dict:
        """Rebuild shards from MongoDB alone; batches not yet persisted are re-run from the intake log."""
        meta, target = await self.catalog.index(index)
        if shard is not None and not 0 <= shard < meta["shards"]:
            raise InvalidRequest(f"index {index!r} has shards 0..{meta['shards'] - 1}, not {shard}")
        await self.persistence.flush()
        restored = []
        for n in range(meta["shards"]) if shard is None else [shard]:
            info = await target.shards[n].rebuild()
            restored.append({"shard": n, "documents": info["documents"]})
        return {"index": index, "restored": restored}


def build_ingest(settings: Settings) -> Ingest:
    """The ingest path alone, for callers that only write (the Ray Data sink's write tasks):
    the catalog, the intake log and the tracker, without a search coordinator."""
    mongo = MongoStore(settings.mongo_uri, settings.mongo_db)
    mongo.ensure_schema()
    cluster = Cluster(settings)
    return Ingest(settings, IndexCatalog(settings, mongo, cluster), mongo, cluster.tracker)
