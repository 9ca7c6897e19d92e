"""A bulk operation, typed: its batches' states, counters and status, and every
transition as a method. The tracker (ops/tracker.py) owns the live ones; MongoDB holds
their checkpoints (`to_doc` / `from_doc`, the same plain JSON as ever).

Counters are derived from per-batch facts (indexed at which opstamps, failed with which
reason) plus the shards' persisted watermarks, and every transition is idempotent, so a
report delivered twice (a retry after a tracker restart) changes nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum

from raysearch.status import TERMINAL, OperationStatus


class BatchState(str, Enum):
    PENDING = "pending"  # in the intake log, not indexed yet
    INDEXED = "indexed"  # applied by its shards, not yet persisted by all of them
    PERSISTED = "persisted"  # every shard it touched has persisted past it
    FAILED = "failed"  # every attempt failed (POST .../retry runs it again)

    def __str__(self) -> str:
        return self.value


@dataclass
class Operation:
    operation_id: str
    index: str
    batch_docs: list[int]  # documents per batch
    kind: str = "bulk"  # bulk | put | delete
    status: OperationStatus = OperationStatus.INDEXING
    created_at: float = 0.0
    updated_at: float = 0.0
    completed_at: float | None = None
    webhook: str | None = None
    notified: bool = False  # its webhook has been sent this final state
    rejected: int = 0  # documents rejected up front by the ingress
    errors: list[dict] = field(default_factory=list)
    batch_state: list[BatchState] = field(default_factory=list)
    batch_indexed_docs: list[int] = field(default_factory=list)
    batch_failed_docs: list[int] = field(default_factory=list)
    opstamps: list[dict | None] = field(default_factory=list)  # per batch: {shard (str): opstamp}

    # ------------------------------------------------------------ making
    @classmethod
    def new(cls, op_id: str, index: str, batch_docs: list[int], errors: list[dict], webhook: str | None = None,
            kind: str = "bulk", now: float | None = None) -> "Operation":
        now = time.time() if now is None else now
        n = len(batch_docs)
        op = cls(op_id, index, list(batch_docs), kind, created_at=now, updated_at=now, webhook=webhook,
                 rejected=len(errors), errors=list(errors), batch_state=[BatchState.PENDING] * n,
                 batch_indexed_docs=[0] * n, batch_failed_docs=[0] * n, opstamps=[None] * n)
        op.refresh_status()
        return op

    @classmethod
    def from_doc(cls, doc: dict) -> "Operation":
        """From a checkpoint (any version: `_notified` was the flag's name before)."""
        return cls(
            operation_id=doc["operation_id"], index=doc["index"], batch_docs=list(doc["batch_docs"]),
            kind=doc.get("kind", "bulk"), status=OperationStatus(doc["status"]),
            created_at=doc["created_at"], updated_at=doc.get("updated_at", doc["created_at"]),
            completed_at=doc.get("completed_at"), webhook=doc.get("webhook"),
            notified=bool(doc.get("notified", doc.get("_notified", False))), rejected=doc.get("rejected", 0),
            errors=list(doc.get("errors", [])), batch_state=[BatchState(s) for s in doc["batch_state"]],
            batch_indexed_docs=list(doc["batch_indexed_docs"]), batch_failed_docs=list(doc["batch_failed_docs"]),
            opstamps=[dict(o) if o else None for o in doc["opstamps"]])

    def to_doc(self) -> dict:
        """The checkpoint: plain JSON values (statuses and states as their strings), copied."""
        doc = {
            "operation_id": self.operation_id, "index": self.index, "kind": self.kind,
            "status": self.status.value, "created_at": self.created_at, "updated_at": self.updated_at,
            "webhook": self.webhook, "notified": self.notified, "rejected": self.rejected,
            "errors": list(self.errors), "batch_docs": list(self.batch_docs),
            "batch_state": [s.value for s in self.batch_state],
            "batch_indexed_docs": list(self.batch_indexed_docs), "batch_failed_docs": list(self.batch_failed_docs),
            "opstamps": [dict(o) if o else None for o in self.opstamps],
        }
        if self.completed_at is not None:
            doc["completed_at"] = self.completed_at
        return doc

    # ------------------------------------------------------------ reading
    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def counts(self) -> tuple[int, int]:
        """(pending, indexed-but-unpersisted) batches."""
        pending = indexed = 0
        for s in self.batch_state:
            if s is BatchState.PENDING:
                pending += 1
            elif s is BatchState.INDEXED:
                indexed += 1
        return pending, indexed

    def pending_batches(self) -> list[int]:
        return [b for b, s in enumerate(self.batch_state) if s is BatchState.PENDING]

    def has_failed_batches(self) -> bool:
        return BatchState.FAILED in self.batch_state

    def persistable(self, watermarks: dict[str, int]) -> bool:
        """Whether apply_watermarks would mark any batch persisted (a read-only check)."""
        return any(s is BatchState.INDEXED and self._covered(b, watermarks) for b, s in enumerate(self.batch_state))

    def _covered(self, batch: int, watermarks: dict[str, int]) -> bool:
        return all(watermarks.get(shard, -1) >= stamp for shard, stamp in (self.opstamps[batch] or {}).items())

    def view(self) -> dict:
        """The API's view of the operation (models.Operation; docs/api.md)."""
        states = self.batch_state
        failed_batch_docs = sum(n for n, s in zip(self.batch_docs, states) if s is BatchState.FAILED)
        view = {
            "operation_id": self.operation_id,
            "index": self.index,
            "status": self.status.value,
            "documents": {
                "total": sum(self.batch_docs) + self.rejected,
                "indexed": sum(self.batch_indexed_docs),
                "failed": self.rejected + sum(self.batch_failed_docs) + failed_batch_docs,
            },
            "batches": {
                "total": len(states),
                "indexed": sum(1 for s in states if s in (BatchState.INDEXED, BatchState.PERSISTED)),
                "persisted": sum(1 for s in states if s is BatchState.PERSISTED),
                "failed": sum(1 for s in states if s is BatchState.FAILED),
            },
            "errors": self.errors[:1000],
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }
        if self.completed_at is not None:
            view["completed_at"] = self.completed_at
        return view

    # --------------------------------------------------------- transitions
    def batch_indexed(self, batch: int, opstamps: dict, indexed: int, failed: list[dict]) -> bool:
        """Record a batch's result; False if it was already recorded."""
        if self.batch_state[batch] not in (BatchState.PENDING, BatchState.FAILED):
            return False
        self.batch_state[batch] = BatchState.INDEXED
        self.opstamps[batch] = {str(s): int(o) for s, o in opstamps.items()}
        self.batch_indexed_docs[batch] = indexed
        self.batch_failed_docs[batch] = len(failed)
        self.errors = [e for e in self.errors if e.get("batch") != batch]
        self.errors.extend({"batch": batch, **f} for f in failed)
        return True

    def batch_failed(self, batch: int, reason: str, ids: list[str]) -> None:
        if self.batch_state[batch] is not BatchState.PENDING:
            return
        self.batch_state[batch] = BatchState.FAILED
        self.errors = [e for e in self.errors if e.get("batch") != batch]
        self.errors.append({"batch": batch, "ids": ids[:100], "documents": self.batch_docs[batch], "reason": reason})

    def reset_failed(self) -> list[int]:
        """Failed batches go back to pending (POST .../retry); returns them. The operation
        will finish again, and its webhook hears of it again."""
        batches = [b for b, s in enumerate(self.batch_state) if s is BatchState.FAILED]
        for b in batches:
            self.batch_state[b] = BatchState.PENDING
        if batches:
            self.errors = [e for e in self.errors if e.get("batch") not in batches]
            self.completed_at = None
            self.notified = False
        return batches

    def apply_watermarks(self, watermarks: dict[str, int]) -> list[int]:
        """Mark indexed batches persisted once every shard they touched has persisted past
        their opstamp; returns the batches that became persisted."""
        done = [b for b, s in enumerate(self.batch_state) if s is BatchState.INDEXED and self._covered(b, watermarks)]
        for b in done:
            self.batch_state[b] = BatchState.PERSISTED
        return done

    def unpersisted_on_shard(self, shard: str) -> list[int]:
        """Batches indexed on `shard` but not persisted go back to pending (the shard was
        rebuilt without them); returns them."""
        redo = [b for b, s in enumerate(self.batch_state)
                if s is BatchState.INDEXED and shard in (self.opstamps[b] or {})]
        for b in redo:
            self.batch_state[b] = BatchState.PENDING
        if redo:
            self.completed_at = None
        return redo

    def refresh_status(self, now: float | None = None) -> OperationStatus:
        """The status the batch states make (and the time it became final)."""
        now = time.time() if now is None else now
        states = self.batch_state
        if BatchState.PENDING in states:
            status = OperationStatus.INDEXING
        elif BatchState.INDEXED in states:
            status = OperationStatus.PERSISTING
        else:
            failed_docs = self.rejected + sum(self.batch_failed_docs) + sum(
                n for n, s in zip(self.batch_docs, states) if s is BatchState.FAILED)
            if failed_docs == 0:
                status = OperationStatus.COMPLETED
            elif sum(self.batch_indexed_docs) == 0:
                status = OperationStatus.FAILED
            else:
                status = OperationStatus.PARTIALLY_COMPLETED
        if status is not self.status:
            self.status = status
            if status in TERMINAL:
                self.completed_at = now
        self.updated_at = now
        return status

    def take_notification(self) -> bool:
        """Whether the final state is due to the webhook now: once per time the operation
        finishes (a retried one finishes, and notifies, again). Marks it sent."""
        if not self.webhook or not self.terminal or self.notified:
            return False
        self.notified = True
        return True
