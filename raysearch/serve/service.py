"""What the HTTP endpoints do, as plain async methods over actor handles.

The FastAPI layer (app.py) only maps HTTP to these calls and errors to status
codes, so a driver script can use the same logic without HTTP.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import orjson
import ray

from raysearch import indexmeta, metrics, schema
from raysearch.actors import registry
from raysearch.analysis.analyzer import ALL_FIELD, Analyzer
from raysearch.config import Settings
from raysearch.errors import (AlreadyExists, Conflict, IndexBeingDeleted, IndexNotFound, InvalidRequest, NotFound,
                              Overloaded, PayloadTooLarge)
from raysearch.index import keys as K
from raysearch.index.batch import encode_payload
from raysearch.index.routing import shard_for
from raysearch.models import FieldSettings, IndexSettings, SearchRequest
from raysearch.ops import book
from raysearch.search import facets, filters, sorting
from raysearch.search.merge import merge_hits
from raysearch.search.plan import GlobalStats, analyze_clauses, build_plan, prefix_pairs, stats_request
from raysearch.search.stats_cache import StatsCache
from raysearch.search.query import parse_query
from raysearch.ingest import decoding, validation
from raysearch.storage.mongo import MongoStore


class SearchService:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.mongo = MongoStore(settings.mongo_uri, settings.mongo_db)
        self.mongo.ensure_schema()
        self.tracker = registry.tracker(settings)
        self.persistence = registry.persistence(settings)
        self.workers = registry.workers(settings)  # resolved again by name where a stale handle matters
        self._indexes: dict[str, tuple[dict, Analyzer, list]] = {}  # name -> (meta, analyzer, shard handles)
        self._fields_cache: dict[str, tuple[float, set[str]]] = {}
        self._stats_cache = StatsCache()  # summed statistics between queries (one-round searches)
        self._checked: dict[str, float] = {}  # index -> when its record was last re-read

    # ------------------------------------------------------------ indexes
    # Every MongoDB call runs in a thread (asyncio.to_thread): a slow database call must
    # not stall the other requests this replica's event loop is serving.
    async def index(self, name: str) -> tuple[dict, Analyzer, list]:
        """(record, analyzer, shard handles) of an existing index; IndexNotFound otherwise,
        IndexBeingDeleted while a DELETE of it runs. The record is cached for META_TTL_S:
        fields may have been declared through another replica or a driver's client."""
        cached = self._indexes.get(name)
        if cached is not None and time.monotonic() - self._checked.get(name, 0.0) <= META_TTL_S:
            return cached
        return await asyncio.to_thread(self._load_index, name)

    def _load_index(self, name: str) -> tuple[dict, Analyzer, list]:
        """Blocking: read the record and resolve the shard actors (threads and readiness only)."""
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
        _, analyzer, shards = indexmeta.parse(meta)  # CorruptIndex (503) naming it; not cached
        cached = (meta, analyzer, registry.shards(self.settings, name, shards))
        self._indexes[name] = cached
        return cached

    async def ensure_index(self, name: str, body: dict | None = None) -> tuple[dict, Analyzer, list]:
        """The index, created with `body` (default settings if None) when it does not exist
        (a bulk or a PUT of a document auto-creates its index)."""
        try:
            return await self.index(name)
        except IndexNotFound:
            await self.create_index(name, body, must_be_new=False)
            return await self.index(name)

    async def types(self, index: str) -> dict[str, str]:
        """The index's typed (non-text) fields: field -> type."""
        return schema.exact_fields((await self.index(index))[0]["settings"].get("fields"))

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
                fields[field] = declared.model_dump()
            try:
                new = IndexSettings(**{**current, "fields": fields}).model_dump()
            except Exception as exc:
                raise InvalidRequest(f"invalid fields: {validation.pydantic_reason(exc)}") from None
            if new == meta["settings"] or await asyncio.to_thread(
                    self.mongo.replace_index_settings, name, meta["settings"], new):
                self._indexes.pop(name, None)
                self._checked.pop(name, None)
                meta, _, _ = await self.index(name)
                return {"index": name, "settings": meta["settings"]}
        raise Conflict(f"the settings of index {name!r} kept changing; retry")

    async def create_index(self, name: str, body: dict | None, must_be_new: bool = True) -> dict:
        validation.check_index_name(name)
        body = dict(body or {})
        body.setdefault("shards", self.settings.shards)
        try:
            settings = IndexSettings(**body)
            indexmeta.build(settings)  # everything derived from the settings, before anything is stored
        except Exception as exc:
            raise InvalidRequest(f"invalid index settings: {validation.pydantic_reason(exc)}") from None
        created = await asyncio.to_thread(self.mongo.create_index_meta, name, settings.model_dump(), settings.shards)
        if not created and must_be_new:
            raise AlreadyExists(f"index {name!r} already exists")
        self._checked.pop(name, None)
        meta, _, _ = await self.index(name)
        return {"index": name, "settings": meta["settings"]}

    async def index_info(self, name: str) -> dict:
        meta, _, shards = await self.index(name)
        infos = await asyncio.gather(*[s.info.remote() for s in shards])
        return {
            "index": name,
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
        for meta in await asyncio.to_thread(self.mongo.list_index_metas):
            if meta.get("deleting"):
                continue
            try:
                _, _, shards = await self.index(meta["_id"])
            except IndexNotFound:  # deleted meanwhile
                continue
            except indexmeta.CorruptIndex as exc:
                out.append({"index": meta["_id"], "error": exc.to_json()["error"]})
                continue
            infos = await asyncio.gather(*[s.info.remote() for s in shards])
            out.append({"index": meta["_id"], "documents": sum(i["documents"] for i in infos)})
        return {"indexes": out}

    async def delete_index(self, name: str) -> dict:
        """Delete an index and everything of it (shards, chunks, intake batches, record).

        The record is first marked `deleting` with a token of this call, and removed last,
        only if it still carries that token: while the deletion runs, a bulk or PUT to the
        same name is refused (409, IndexBeingDeleted) instead of auto-creating a new index
        whose record, intake batches or shard actors the cleanup would then wipe."""
        token = uuid.uuid4().hex
        state, meta = await asyncio.to_thread(self.mongo.mark_index_deleting, name, token)
        if state == "missing":
            raise IndexNotFound(f"no such index: {name!r}")
        if state == "busy":
            raise IndexBeingDeleted(f"index {name!r} is already being deleted")
        self._indexes.pop(name, None)
        self._checked.pop(name, None)
        try:
            count = indexmeta.parse(meta)[2]
            shards = registry.shards(self.settings, name, count)
        except indexmeta.CorruptIndex:  # its shard count is unreadable: find its shard actors by name
            shards = [registry.find(n) for n in registry.shard_names_of(name)]
            shards = [s for s in shards if s is not None]
            count = len(shards)
        self._stats_cache.invalidate(name)
        self._fields_cache.pop(name, None)
        await self.persistence.forget_index.remote(name)  # persistence skips a record marked deleting
        await asyncio.gather(*[s.drop.remote() for s in shards])
        for s in shards:
            ray.kill(s, no_restart=True)
        await asyncio.gather(*[w.forget_index.remote(name) for w in registry.workers(self.settings)])
        await self.tracker.forget_index.remote(name)
        await asyncio.to_thread(_wait_names_free, [registry.shard_name(name, n) for n in range(count)])
        await asyncio.to_thread(self.mongo.delete_index, name, count, token)
        self._indexes.pop(name, None)
        self._checked.pop(name, None)
        return {"acknowledged": True, "index": name}

    # -------------------------------------------------------------- bulk
    async def bulk(self, index: str, body: bytes, content_type: str, operation_id: str | None = None) -> dict:
        """`operation_id` (in-cluster callers only, e.g. the Ray Data sink): a caller-chosen id;
        submitting it again is a no-op that returns the existing operation (idempotent retries)."""
        validation.check_index_name(index)
        if len(body) > self.settings.max_body_bytes:
            raise PayloadTooLarge(f"request body is {len(body)} bytes; the limit is {self.settings.max_body_bytes}")
        pending = await self.tracker.pending_batches.remote()
        if pending >= self.settings.max_pending_batches:
            raise Overloaded(f"{pending} batches are waiting to be indexed; retry later")
        raw_docs, webhook = validation.parse_bulk_body(body, content_type)
        if webhook is not None:
            validation.check_webhook(webhook, self.settings.webhook_allowed_hosts)
        if not raw_docs:
            raise InvalidRequest("the request contains no documents")
        types = schema.exact_fields((await self.ensure_index(index))[0]["settings"].get("fields"))
        docs, errors = [], []
        for position, raw in enumerate(raw_docs):
            doc, doc_id, reason = validation.validate_document(raw, self.settings.max_doc_bytes)
            reason = reason or schema.type_error(doc, types)
            if reason:
                errors.append({"position": position, "id": doc_id, "reason": reason})
            else:
                docs.append(doc)
        return await self.submit(index, docs, [], errors, webhook, operation_id=operation_id)

    async def submit(self, index: str, docs: list[dict], deletes: list[str], errors: list[dict],
                     webhook: str | None = None, kind: str = "bulk", operation_id: str | None = None) -> dict:
        """Put checked documents and deletes into the intake log and register the operation."""
        types = await self.types(index)
        op_id = operation_id or uuid.uuid4().hex
        if operation_id and (existing := await self.tracker.get.remote(operation_id)) is not None:
            rejected = [e for e in existing["errors"] if "position" in e]
            return {"operation_id": op_id, "index": existing["index"], "status": existing["status"],
                    "documents": existing["documents"]["total"] - len(rejected),
                    "batches": existing["batches"]["total"], "errors": rejected, "existing": True}
        size = self.settings.batch_size
        batches = [docs[i : i + size] for i in range(0, len(docs), size)]
        payloads = [encode_payload(b, types=types) for b in batches]
        if deletes:
            payloads.append(encode_payload([], deletes))
            batches.append(deletes)
        # Durable before acknowledged: the intake log, then the tracker's checkpoint.
        await asyncio.to_thread(self.mongo.put_batches, op_id, index, payloads)
        view = await self.tracker.create.remote(op_id, index, [len(b) for b in batches], errors, webhook, kind,
                                                may_exist=operation_id is not None)
        return {
            "operation_id": op_id,
            "index": index,
            "status": view["status"],
            "documents": len(docs),
            "batches": len(batches),
            "errors": errors,
        }

    async def operation(self, op_id: str) -> dict:
        view = await self.tracker.get.remote(op_id)
        if view is None:
            raise NotFound(f"no such operation: {op_id!r}")
        return view

    async def operations(self, index: str | None, limit: int = 100, after: str | None = None) -> dict:
        """A page of operations, newest first: `{"operations": [...], "next": cursor or null}`."""
        if not 1 <= limit <= MAX_OPERATIONS_PAGE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_OPERATIONS_PAGE}, not {limit}")
        if after is not None:
            try:
                book.decode_cursor(after)
            except ValueError as exc:
                raise InvalidRequest(f"after: {exc}") from None
        return await self.tracker.list.remote(index, limit, after)

    async def retry(self, op_id: str) -> dict:
        view = await self.tracker.retry.remote(op_id)
        if view is None:
            raise NotFound(f"no such operation: {op_id!r}")
        return view

    # --------------------------------------------------------- documents
    async def get_document(self, index: str, doc_id: str) -> dict:
        meta, _, shards = await self.index(index)
        raw = await shards[shard_for(doc_id, meta["shards"])].get_document.remote(doc_id)
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
        meta, _, _ = await self.ensure_index(index)
        reason = schema.type_error(doc, schema.exact_fields(meta["settings"].get("fields")))
        if reason:
            raise InvalidRequest(reason)
        accepted = await self.submit(index, [doc], [], [], kind="put")
        view = await self.tracker.wait_indexed.remote(accepted["operation_id"])
        return {"id": doc_id, "index": index, "operation_id": accepted["operation_id"], "status": view["status"]}

    async def delete_document(self, index: str, doc_id: str) -> dict:
        await self.get_document(index, doc_id)  # 404 if absent
        accepted = await self.submit(index, [], [doc_id], [], kind="delete")
        view = await self.tracker.wait_indexed.remote(accepted["operation_id"])
        return {"id": doc_id, "index": index, "deleted": True, "operation_id": accepted["operation_id"],
                "status": view["status"]}

    # ------------------------------------------------------------- search
    async def search(self, index: str, request: SearchRequest) -> dict:
        """Query phase on every shard (ids, scores, sort values, facet partials), merge,
        then a fetch phase for the page's documents only, from the shards that hold them."""
        started = time.perf_counter()
        meta, analyzer, shards = await self.index(index)
        s = self.settings
        q = request.q if request.q is not None else ""
        if len(q) > s.max_query_chars:
            raise InvalidRequest(f"query is {len(q)} characters; the limit is {s.max_query_chars}")
        if request.size > s.max_size:
            raise InvalidRequest(f"size {request.size} is over the limit of {s.max_size}")
        # With or without search_after: every shard ranks its top from + size, so the window
        # bounds each request's work (search_after pages deeper, from the cursor, not by from).
        if request.from_ + request.size > s.max_window:
            raise InvalidRequest(f"from + size is over the limit of {s.max_window}; page deeper with search_after")
        types = schema.exact_fields(meta["settings"].get("fields"))
        query_plan = {
            "filter": filters.parse_filter(request.filter, types),
            "sort": sorting.parse_sort(request.sort, types),
            "facets": facets.parse_facets(request.facets, types),
        }
        query_plan["search_after"] = sorting.parse_after(request.search_after, query_plan["sort"], types)
        aclauses = []
        if q.strip() in ("", "*"):
            query_plan["match_all"] = True
        else:
            fields = validation.parse_fields(request.fields) or self._default_fields(meta)
            known = await self.known_fields(index, shards)
            clauses = parse_query(q, lambda f: f in known or f in types, s.max_query_clauses)
            aclauses = analyze_clauses(clauses, analyzer, fields, request.operator, types)
            if not aclauses:
                return self._answer(started, index, 0, [], {} if not query_plan["facets"] else
                                    facets.merge(query_plan["facets"], [], types))
            query_plan.update(await self._plan(index, shards, aclauses))
        k = request.from_ + request.size
        # A first page travels with the query phase (each shard sends its own top `size`);
        # a deeper page is fetched afterwards from the shards holding it (only its documents move).
        query_plan["fetch"] = request.from_ == 0 and request.size <= FETCH_WITH_QUERY_MAX
        results = await asyncio.gather(*[sh.search.remote(query_plan, k) for sh in shards])
        if any(r.get("stale") for r in results):  # planned from cached statistics a shard has moved past
            self._stats_cache.invalidate(index)
            query_plan.update(await self._plan(index, shards, aclauses, cached=False))
            results = await asyncio.gather(*[sh.search.remote(query_plan, k) for sh in shards])
        total = sum(r["total"] for r in results)
        keys = query_plan["sort"]
        page = merge_hits([r["hits"] for r in results], keys, request.from_, k)
        if query_plan["fetch"]:
            raws = {h[1]: raw for r in results for h, raw in zip(r["hits"], r.get("documents", ())) if raw is not None}
            documents = {doc_id: orjson.loads(raws[doc_id]) for _, doc_id, _ in page if doc_id in raws}
        else:
            documents = await self.fetch(meta, shards, [doc_id for _, doc_id, _ in page])
        hits = []
        show_sort = request.sort is not None or request.search_after is not None
        for score, doc_id, values in page:
            if doc_id not in documents:  # deleted between the query and the fetch phase
                continue
            hit = {"id": doc_id, "score": score, "document": documents[doc_id]}
            if show_sort:
                hit["sort"] = [schema.display(types.get(f), v) if v is not None else None
                               for (f, _), v in zip(keys, values)] + [doc_id]
            hits.append(hit)
        if request.highlight and aclauses:
            from raysearch.search.highlight import highlight

            for hit in hits:
                hit["highlight"] = highlight(hit["document"], aclauses, analyzer)
        merged_facets = facets.merge(query_plan["facets"], [r["facets"] for r in results], types) \
            if query_plan["facets"] else None
        return self._answer(started, index, total, hits, merged_facets)

    @staticmethod
    def _answer(started: float, index: str, total: int, hits: list, merged_facets: dict | None) -> dict:
        took = time.perf_counter() - started
        metrics.observe("search_latency", took, index=index)
        out = {"total": total, "took_ms": round(took * 1000, 3), "hits": hits}
        if merged_facets is not None:
            out["facets"] = merged_facets
        return out

    async def fetch(self, meta: dict, shards: list, doc_ids: list[str]) -> dict[str, dict]:
        """Fetch phase: the stored documents of one page, one call per shard that holds some."""
        by_shard: dict[int, list[str]] = {}
        for doc_id in doc_ids:
            by_shard.setdefault(shard_for(doc_id, meta["shards"]), []).append(doc_id)
        parts = await asyncio.gather(*[shards[n].get_documents.remote(ids) for n, ids in by_shard.items()])
        out = {}
        for ids, raws in zip(by_shard.values(), parts):
            for doc_id, raw in zip(ids, raws):
                if raw is not None:
                    out[doc_id] = orjson.loads(raw)
        return out

    async def _plan(self, index: str, shards: list, aclauses, cached: bool = True) -> dict:
        """Global statistics, then the scoring plan (clauses and avgdl). From the replica's
        cache when it holds every field and term (the plan then names the shard versions it
        assumes, and goes out in the query phase's one round: search/stats_cache.py), else
        from a round of calls to every shard (which then fills the cache)."""
        req = stats_request(aclauses)
        hit = self._stats_cache.lookup(index, req) if cached else None
        if hit is not None and len(hit[1]) == len(shards):
            stats, versions = hit
            return {**build_plan(aclauses, stats), "versions": versions}
        m = self.settings.max_prefix_expansions
        parts = await asyncio.gather(*[sh.stats.remote(req.fields, req.pairs, req.prefixes, m) for sh in shards])
        stats = GlobalStats.merge(parts, m)
        self._stats_cache.store(index, [p.get("version") for p in parts], req, stats)
        extra = prefix_pairs(stats)
        prefix_dfs = {}
        if extra:
            more = await asyncio.gather(*[sh.stats.remote([], extra, [], m) for sh in shards])
            for part in more:
                for pair, df in zip(part["pairs"], part["doc_freqs"]):
                    prefix_dfs[tuple(pair)] = prefix_dfs.get(tuple(pair), 0) + df
        return {**build_plan(aclauses, stats, prefix_dfs), "versions": None}

    @staticmethod
    def _default_fields(meta: dict) -> list[tuple[str, float]]:
        """Declared text fields with their boosts, else `_all` (typed fields are not words)."""
        declared = meta["settings"].get("fields") or {}
        text = [(name, spec.get("boost", 1.0)) for name, spec in declared.items()
                if spec.get("type", schema.TEXT) == schema.TEXT]
        return text or [(ALL_FIELD, 1.0)]

    async def known_fields(self, index: str, shards: list) -> set[str]:
        """Fields that have documents; `word:` for any other word is read as plain text."""
        cached = self._fields_cache.get(index)
        if cached and time.monotonic() - cached[0] < 2.0:
            return cached[1]
        names = set()
        for part in await asyncio.gather(*[s.fields.remote() for s in shards]):
            names.update(part)
        self._fields_cache[index] = (time.monotonic(), names)
        return names

    # --------------------------------------------------------- operations
    def check_ready(self) -> tuple[bool, str]:
        """Blocking: whether MongoDB and every actor answer (readiness.ReadinessProbe runs it
        on its own thread, apart from any request, so a request given up by its client can
        never cancel a ping half-way; see serve/readiness.py)."""
        try:
            self.mongo.ping()
        except Exception as exc:
            return False, f"MongoDB unreachable: {type(exc).__name__}: {exc}"
        handles = [("tracker", self.tracker), ("persistence", self.persistence)]
        handles += [(f"worker {i}", w) for i, w in enumerate(registry.workers(self.settings))]
        corrupt = []
        for meta in self.mongo.list_index_metas():
            if meta.get("deleting"):
                continue
            try:
                _, _, shards = self._load_index(meta["_id"])
            except (IndexNotFound, IndexBeingDeleted):  # deleted meanwhile
                continue
            except indexmeta.CorruptIndex as exc:  # named below; the other indexes are still checked
                corrupt.append(exc.reason)
                continue
            handles += [(f"shard {meta['_id']}:{n}", h) for n, h in enumerate(shards)]
        refs = [h.ping.remote() for _, h in handles]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=READY_PING_TIMEOUT_S)
        if len(ready) < len(refs):
            missing = [name for (name, _), ref in zip(handles, refs) if ref not in ready]
            return False, f"actors not answering: {', '.join(missing[:10])}"
        status = ray.get(self.persistence.status.remote(), timeout=READY_PING_TIMEOUT_S)
        if status["last_error"]:
            return False, f"persistence failing: {status['last_error']}"
        if corrupt:
            return False, "; ".join(corrupt)
        return True, "ok"

    async def stats(self) -> dict:
        in_flight = await self.tracker.in_flight.remote()
        try:  # answered apart from the drain (its own concurrency group), bounded all the same
            persistence = await asyncio.wait_for(self.persistence.status.remote(), STATUS_TIMEOUT_S)
        except (asyncio.TimeoutError, ray.exceptions.RayError) as exc:
            persistence = {"error": f"persistence not answering: {type(exc).__name__}"}
        out = {}
        for meta in await asyncio.to_thread(self.mongo.list_index_metas):
            name = meta["_id"]
            if meta.get("deleting"):
                continue
            try:
                _, _, shards = await self.index(name)
            except (IndexNotFound, IndexBeingDeleted):
                continue
            except indexmeta.CorruptIndex as exc:
                out[name] = {"error": exc.to_json()["error"]}
                continue
            infos = await asyncio.gather(*[s.info.remote() for s in shards])
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
        meta, _, shards = await self.index(index)
        if shard is not None and not 0 <= shard < meta["shards"]:
            raise InvalidRequest(f"index {index!r} has shards 0..{meta['shards'] - 1}, not {shard}")
        await self.persistence.flush.remote()
        mismatches, terms_checked, entries_checked, per_shard = [], 0, 0, []
        for n in range(meta["shards"]) if shard is None else [shard]:
            part = await shards[n].verify.remote()
            terms_checked += part["terms"]
            entries_checked += part["entries"]
            mismatches += [{"shard": n, **m} for m in part["mismatches"]]
            per_shard.append({"shard": n, "entries": part["entries"], "terms": part["terms"],
                              "ok": not part["mismatches"], "seconds": part["seconds"]})
        return {"ok": not mismatches, "terms_checked": terms_checked, "entries_checked": entries_checked,
                "shards": per_shard, "mismatches": mismatches[:1000]}

    async def restore(self, index: str, shard: int | None = None) -> dict:
        """Rebuild shards from MongoDB alone; batches not yet persisted are re-run from the intake log."""
        meta, _, shards = await self.index(index)
        targets = range(meta["shards"]) if shard is None else [shard]
        if shard is not None and not 0 <= shard < meta["shards"]:
            raise InvalidRequest(f"index {index!r} has shards 0..{meta['shards'] - 1}, not {shard}")
        await self.persistence.flush.remote()
        restored = []
        for n in targets:
            info = await shards[n].rebuild.remote()
            restored.append({"shard": n, "documents": info["documents"]})
        return {"index": index, "restored": restored}


META_TTL_S = 2.0  # how stale a replica's copy of an index's settings may be
READY_PING_TIMEOUT_S = 10.0  # an actor that does not answer a ping within this is reported
STATUS_TIMEOUT_S = 5.0  # /stats does not wait longer than this for the persistence actor
FETCH_WITH_QUERY_MAX = 50  # first pages up to this size come back with the query phase
MAX_OPERATIONS_PAGE = 1000  # GET /bulk-operations?limit=


def _wait_names_free(names: list[str], timeout_s: float = 30.0) -> None:
    """Until no live actor holds these names (ray.kill is asynchronous): an index created
    again under the same name then gets new shard actors, never the dying ones."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(registry.find(n) is not None for n in names):
        time.sleep(0.05)
