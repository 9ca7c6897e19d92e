"""The state of every bulk operation, as plain data (the TrackerActor wraps it).

Counters are derived from per-batch facts (indexed at which opstamps, failed
with which reason) plus the shards' persisted watermarks, and every update is
idempotent, so a report delivered twice (a retry after a tracker restart)
changes nothing.
"""

from __future__ import annotations

import time

PENDING, INDEXED, PERSISTED, FAILED = "pending", "indexed", "persisted", "failed"
ACTIVE_STATUSES = ("queued", "indexing", "persisting")
TERMINAL_STATUSES = ("completed", "partially_completed", "failed")


def new_operation(op_id: str, index: str, batch_docs: list[int], errors: list[dict], webhook: str | None = None,
                  kind: str = "bulk") -> dict:
    now = time.time()
    op = {
        "operation_id": op_id,
        "index": index,
        "kind": kind,
        "status": "indexing",
        "created_at": now,
        "updated_at": now,
        "webhook": webhook,
        "rejected": len(errors),  # documents rejected up front by the ingress
        "errors": list(errors),
        "batch_docs": list(batch_docs),
        "batch_state": [PENDING] * len(batch_docs),
        "batch_indexed_docs": [0] * len(batch_docs),
        "batch_failed_docs": [0] * len(batch_docs),
        "opstamps": [None] * len(batch_docs),  # per batch: {shard (str): opstamp}
    }
    refresh_status(op, {})
    return op


def batch_indexed(op: dict, batch: int, opstamps: dict, indexed: int, failed: list[dict]) -> bool:
    """Record a batch's result; returns False if it was already recorded."""
    if op["batch_state"][batch] not in (PENDING, FAILED):
        return False
    op["batch_state"][batch] = INDEXED
    op["opstamps"][batch] = {str(s): int(o) for s, o in opstamps.items()}
    op["batch_indexed_docs"][batch] = indexed
    op["batch_failed_docs"][batch] = len(failed)
    op["errors"] = [e for e in op["errors"] if e.get("batch") != batch]
    op["errors"].extend({"batch": batch, **f} for f in failed)
    return True


def batch_failed(op: dict, batch: int, reason: str, ids: list[str]) -> None:
    if op["batch_state"][batch] != PENDING:
        return
    op["batch_state"][batch] = FAILED
    op["errors"] = [e for e in op["errors"] if e.get("batch") != batch]
    op["errors"].append({"batch": batch, "ids": ids[:100], "documents": op["batch_docs"][batch], "reason": reason})


def reset_failed(op: dict) -> list[int]:
    """Failed batches go back to pending (POST .../retry); returns them."""
    batches = [b for b, s in enumerate(op["batch_state"]) if s == FAILED]
    for b in batches:
        op["batch_state"][b] = PENDING
    op["errors"] = [e for e in op["errors"] if e.get("batch") not in batches]
    op.pop("completed_at", None)
    return batches


def apply_watermarks(op: dict, watermarks: dict[str, int]) -> list[int]:
    """Mark indexed batches persisted once every shard they touched has persisted
    past their opstamp. Returns the batches that became persisted."""
    done = []
    for b, state in enumerate(op["batch_state"]):
        if state != INDEXED:
            continue
        stamps = op["opstamps"][b] or {}
        if all(watermarks.get(shard, -1) >= stamp for shard, stamp in stamps.items()):
            op["batch_state"][b] = PERSISTED
            done.append(b)
    return done


def unpersisted_on_shard(op: dict, shard: str) -> list[int]:
    """Batches indexed on `shard` but not persisted yet go back to pending; returns them."""
    redo = [b for b, s in enumerate(op["batch_state"]) if s == INDEXED and shard in (op["opstamps"][b] or {})]
    for b in redo:
        op["batch_state"][b] = PENDING
    if redo:
        op.pop("completed_at", None)
    return redo


def pending_batches(op: dict) -> list[int]:
    return [b for b, s in enumerate(op["batch_state"]) if s == PENDING]


def refresh_status(op: dict, watermarks: dict[str, int]) -> str:
    states = op["batch_state"]
    if any(s == PENDING for s in states):
        status = "indexing"
    elif any(s == INDEXED for s in states):
        status = "persisting"
    else:
        failed_docs = op["rejected"] + sum(op["batch_failed_docs"]) + sum(
            n for n, s in zip(op["batch_docs"], states) if s == FAILED
        )
        indexed_docs = sum(op["batch_indexed_docs"])
        if failed_docs == 0:
            status = "completed"
        elif indexed_docs == 0:
            status = "failed"
        else:
            status = "partially_completed"
    if status != op["status"]:
        op["status"] = status
        if status in TERMINAL_STATUSES:
            op["completed_at"] = time.time()
    op["updated_at"] = time.time()
    return status


def public_view(op: dict) -> dict:
    """The API shape of an operation (docs/api.md)."""
    states = op["batch_state"]
    failed_batch_docs = sum(n for n, s in zip(op["batch_docs"], states) if s == FAILED)
    view = {
        "operation_id": op["operation_id"],
        "index": op["index"],
        "status": op["status"],
        "documents": {
            "total": sum(op["batch_docs"]) + op["rejected"],
            "indexed": sum(op["batch_indexed_docs"]),
            "failed": op["rejected"] + sum(op["batch_failed_docs"]) + failed_batch_docs,
        },
        "batches": {
            "total": len(states),
            "indexed": sum(1 for s in states if s in (INDEXED, PERSISTED)),
            "persisted": sum(1 for s in states if s == PERSISTED),
            "failed": sum(1 for s in states if s == FAILED),
        },
        "errors": op["errors"][:1000],
        "created_at": op["created_at"],
        "updated_at": op["updated_at"],
    }
    if "completed_at" in op:
        view["completed_at"] = op["completed_at"]
    return view
