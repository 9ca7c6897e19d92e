"""The ingest path: check a bulk request, put its documents into the intake log (durable
in MongoDB before anything is acknowledged), register the operation with the tracker.

The HTTP API, the Elasticsearch layer and the Ray Data sink all submit through
`Ingest`; the pieces it needs come in as small protocols (the index catalog, the intake
log, the tracker), so this module knows nothing of Ray, Serve or HTTP.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Protocol

from raysearch import schema
from raysearch.errors import InvalidRequest, Overloaded, PayloadTooLarge, StorageFull
from raysearch.index.batch import encode_payload
from raysearch.ingest import validation


class Catalog(Protocol):
    async def ensure_index(self, name: str, body: dict | None = None): ...  # -> (record, IndexTarget)
    async def index(self, name: str): ...  # -> (record, IndexTarget); an alias gives its index's
    async def resolve(self, name: str) -> str: ...  # an alias -> its index; any other name as it is


class IntakeLog(Protocol):
    def put_batches(self, op_id: str, index: str, payloads: list[bytes]) -> None: ...  # blocking


class Tracker(Protocol):
    async def admission(self, index: str) -> tuple[int, int, str | None]: ...  # ops.tracker.Admission
    async def get(self, op_id: str) -> dict | None: ...
    async def create(self, op_id: str, index: str, batch_docs: list[int], errors: list[dict],
                     webhook: str | None = None, kind: str = "bulk", may_exist: bool = True) -> dict: ...


class Ingest:
    def __init__(self, settings, catalog: Catalog, intake: IntakeLog, tracker: Tracker):
        self.settings, self.catalog, self.intake, self.tracker = settings, catalog, intake, tracker

    async def bulk(self, index: str, body: bytes, content_type: str, operation_id: str | None = None) -> dict:
        """A bulk body (JSON array, {"documents", "webhook"} or NDJSON) into `index`, created if
        absent. Invalid documents are listed in `errors`; the others go ahead.
        `operation_id` (in-cluster callers only, e.g. the Ray Data sink): a caller-chosen id;
        submitting it again is a no-op that returns the existing operation (idempotent retries)."""
        s = self.settings
        validation.check_index_name(index)
        index = await self.catalog.resolve(index)  # writes to an alias go to its index
        if len(body) > s.max_body_bytes:
            raise PayloadTooLarge(f"request body is {len(body)} bytes; the limit is {s.max_body_bytes}")
        await self.check_backlog(index)
        raw_docs, webhook = validation.parse_bulk_body(body, content_type)
        if webhook is not None:
            validation.check_webhook(webhook, s.webhook_allowed_hosts)
        if not raw_docs:
            raise InvalidRequest("the request contains no documents")
        target = (await self.catalog.ensure_index(index))[1]
        types, vectors = target.types, target.vectors
        accepted, errors = [], []
        for position, raw in enumerate(raw_docs):
            doc, doc_id, reason = validation.validate_document(raw, s.max_doc_bytes, vectors)
            reason = reason or schema.type_error(doc, types)
            if reason:
                errors.append({"position": position, "id": doc_id, "reason": reason})
            else:
                accepted.append((position, doc))
        docs = [doc for _, doc in accepted]
        if vectors:  # over the whole request at once (schema.check_vectors)
            reasons = schema.check_vectors(docs, vectors)
            errors += [{"position": position, "id": doc["id"], "reason": reason}
                       for (position, doc), reason in zip(accepted, reasons) if reason]
            errors.sort(key=lambda e: e["position"])
            docs = [doc for doc, reason in zip(docs, reasons) if not reason]
        return await self.submit(index, docs, [], errors, webhook, operation_id=operation_id)

    async def check_backlog(self, index: str) -> None:
        """Overloaded (429) while too many accepted batches wait to be indexed or persisted;
        StorageFull (507) while the index's batches wait for disk space under one of its shards."""
        admission = await self.tracker.admission(index)
        if admission.blocked:
            raise StorageFull(f"index {index!r} takes no writes until disk space is freed: {admission.blocked}")
        reason = overload(admission, self.settings)
        if reason:
            raise Overloaded(reason)

    async def submit(self, index: str, docs: list[dict], deletes: list[str], errors: list[dict],
                     webhook: str | None = None, kind: str = "bulk", operation_id: str | None = None) -> dict:
        """Checked documents and deletes into the intake log, then the operation registered."""
        target = (await self.catalog.index(index))[1]
        index, types, vectors = target.name, target.types, target.vectors
        op_id = operation_id or uuid.uuid4().hex
        if operation_id and (existing := await self.tracker.get(operation_id)) is not None:
            rejected = [e for e in existing["errors"] if "position" in e]
            return {"operation_id": op_id, "index": existing["index"], "status": existing["status"],
                    "documents": existing["documents"]["total"] - len(rejected),
                    "batches": existing["batches"]["total"], "errors": rejected, "existing": True}
        size = batch_docs(self.settings.batch_size, len(target.shards))
        batches: list[list] = [docs[i : i + size] for i in range(0, len(docs), size)]
        payloads = [encode_payload(b, types=types, vectors=vectors) for b in batches]
        if deletes:
            payloads.append(encode_payload([], deletes))
            batches.append(deletes)
        # Durable before acknowledged: the intake log, then the tracker's checkpoint.
        await asyncio.to_thread(self.intake.put_batches, op_id, index, payloads)
        view = await self.tracker.create(op_id, index, [len(b) for b in batches], errors, webhook, kind,
                                         may_exist=operation_id is not None)
        return {"operation_id": op_id, "index": index, "status": view["status"], "documents": len(docs),
                "batches": len(batches), "errors": errors}


# A batch reaches its shards as one part each, applied in one call (a RocksDB write batch,
# a change-log entry, an update of the statistics): with few documents a part, those fixed
# costs are most of the work. benchmarks/cluster.py, 500-document batches, workers warm:
# ShardStore CPU 0.086 ms a document at 2 shards, 0.33 at 32 (16 documents a part). So a
# batch holds at least this many documents a shard, up to MAX_BATCH_DOCS.
MIN_DOCS_PER_PART = 100
MAX_BATCH_DOCS = 5000  # Settings.batch_size's bound: a batch's posting block fits one MongoDB chunk


def batch_docs(batch_size: int, shards: int) -> int:
    """Documents per batch for an index of `shards` shards: the setting, raised for many shards."""
    return max(batch_size, min(MAX_BATCH_DOCS, MIN_DOCS_PER_PART * shards))


def overload(admission, settings) -> str | None:
    """Why a bulk must wait (a 429's reason), or None. Both backlogs count: batches not yet
    indexed, and batches indexed but not yet persisted, so that intake faster than the
    persistence actor drains is refused at the door instead of growing a lag (the intake
    log, the shards' change logs, the tracker's active operations) without bound."""
    if admission.pending >= settings.max_pending_batches:
        return f"{admission.pending} batches are waiting to be indexed; retry later"
    if admission.unpersisted >= settings.max_unpersisted_batches:
        return f"{admission.unpersisted} batches are waiting to be persisted to MongoDB; retry later"
    return None
