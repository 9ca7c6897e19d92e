"""The state of every bulk operation, as plain data (the TrackerActor wraps it).

Counters are derived from per-batch facts (indexed at which opstamps, failed
with which reason) plus the shards' persisted watermarks, and every update is
idempotent, so a report delivered twice (a retry after a tracker restart)
changes nothing.
"""

from __future__ import annotations

import base64
import json
import time

from raysearch.ops.status import ACTIVE, ACTIVE_VALUES, TERMINAL, TERMINAL_VALUES, OperationStatus

PENDING, INDEXED, PERSISTED, FAILED = "pending", "indexed", "persisted", "failed"
ACTIVE_STATUSES = ACTIVE_VALUES  # plain strings, as stored
TERMINAL_STATUSES = TERMINAL_VALUES

__all__ = ["ACTIVE", "TERMINAL", "OperationStatus"]  # re-exported for callers of book


def status_of(op: dict) -> OperationStatus:
    return OperationStatus(op["status"])


def is_terminal(op: dict) -> bool:
    return status_of(op) in TERMINAL


def batch_counts(op: dict) -> tuple[int, int]:
    """(pending, indexed-but-unpersisted) batches of the operation."""
    pending = indexed = 0
    for s in op["batch_state"]:
        if s == PENDING:
            pending += 1
        elif s == INDEXED:
            indexed += 1
    return pending, indexed


def new_operation(op_id: str, index: str, batch_docs: list[int], errors: list[dict], webhook: str | None = None,
                  kind: str = "bulk") -> dict:
    now = time.time()
    op = {
        "operation_id": op_id,
        "index": index,
        "kind": kind,
        "status": OperationStatus.INDEXING.value,
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
    if batches:  # it will finish again, and its webhook hears of it again
        op.pop("_notified", None)
    return batches


def take_notification(op: dict) -> bool:
    """Whether the operation's final state is due to its webhook now: once per time it
    finishes (a retried operation finishes, and notifies, again). Marks it sent."""
    if not op.get("webhook") or not is_terminal(op) or op.get("_notified"):
        return False
    op["_notified"] = True
    return True


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


def persistable(op: dict, watermarks: dict[str, int]) -> bool:
    """Whether apply_watermarks would mark any batch persisted (a read-only check)."""
    for b, state in enumerate(op["batch_state"]):
        if state == INDEXED and all(watermarks.get(shard, -1) >= stamp
                                    for shard, stamp in (op["opstamps"][b] or {}).items()):
            return True
    return False


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


def refresh_status(op: dict, watermarks: dict[str, int]) -> OperationStatus:
    states = op["batch_state"]
    if any(s == PENDING for s in states):
        status = OperationStatus.INDEXING
    elif any(s == INDEXED for s in states):
        status = OperationStatus.PERSISTING
    else:
        failed_docs = op["rejected"] + sum(op["batch_failed_docs"]) + sum(
            n for n, s in zip(op["batch_docs"], states) if s == FAILED
        )
        indexed_docs = sum(op["batch_indexed_docs"])
        if failed_docs == 0:
            status = OperationStatus.COMPLETED
        elif indexed_docs == 0:
            status = OperationStatus.FAILED
        else:
            status = OperationStatus.PARTIALLY_COMPLETED
    if status.value != op["status"]:
        op["status"] = status.value
        if status in TERMINAL:
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
        "status": status_of(op).value,
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


# ------------------------------------------------------------- paging
def encode_cursor(created_at: float, op_id: str) -> str:
    """The opaque `next` of a page of operations (newest first: created_at desc, then id desc)."""
    raw = json.dumps([created_at, op_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """Raises ValueError on anything that is not a cursor made by encode_cursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, op_id = json.loads(raw)
    except Exception:
        raise ValueError(f"not a cursor of this listing: {cursor[:80]!r}") from None
    if not isinstance(created_at, (int, float)) or isinstance(created_at, bool) or not isinstance(op_id, str):
        raise ValueError(f"not a cursor of this listing: {cursor[:80]!r}")
    return float(created_at), op_id
