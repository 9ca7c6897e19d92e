"""Ray Data sink: index a Ray Dataset's rows through actor handles (no HTTP).

    import ray, raysearch
    ray.init(address="auto")
    ray.data.read_json("docs.jsonl").write_datasink(raysearch.RaySearchDatasink("debian"))

Each row is a document (an ``id`` column is optional; rows without one get generated
ids). Every write task submits its blocks with the ingress's own code
(``SearchService.bulk``): the same validation, the intake log in MongoDB (durable before
accepted) and the same TrackerActor operations as ``POST /bulk-indexing``.

Idempotent: each request's operation id is derived from a write id chosen in
``on_write_start`` plus the task index, block number and part, so a retried write task
finds its operations already registered and submits nothing twice.

``wait``: ``"searchable"`` (default) returns once every row is searchable,
``"accepted"`` once they are durable (as a 202 would), ``"completed"`` once they are
also persisted to MongoDB. Rejected or failed rows raise ``raysearch.errors.DatasinkError``
listing their ids and reasons.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import math
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Iterable

from ray.data.block import Block, BlockAccessor
from ray.data.datasource.datasink import Datasink, WriteResult

from raysearch.errors import DatasinkError, InvalidRequest, Overloaded, Unavailable
from raysearch.retry import Backoff, wait_out_async

WAITS = ("accepted", "searchable", "completed")
TERMINAL = ("completed", "partially_completed", "failed")
_ID_NAMESPACE = uuid.UUID("5b1f3c9e-7d2a-4e61-9a0b-52a7c3d8e4f1")
_ingests: dict[str, object] = {}  # per process: settings JSON -> Ingest (write tasks reuse workers)
_ingests_lock = threading.Lock()


class RaySearchDatasink(Datasink[str]):
    def __init__(self, index: str, wait: str = "searchable", rows_per_request: int = 5000,
                 timeout_s: float = 3600.0, poll_interval_s: float = 0.25):
        from raysearch.ingest.validation import check_index_name

        if wait not in WAITS:
            raise InvalidRequest(f"wait must be one of {', '.join(WAITS)}, not {wait!r}")
        self.index = check_index_name(index)
        self.wait = wait
        self.rows_per_request = max(1, int(rows_per_request))
        self.timeout_s = timeout_s
        self.poll_interval_s = poll_interval_s
        self.write_id: str | None = None
        self._settings: dict | None = None

    def get_name(self) -> str:
        return "RaySearch"

    # ----------------------------------------------------------- driver
    def on_write_start(self, schema=None) -> None:
        self.write_id = uuid.uuid4().hex
        self._settings = _service_settings()

    def on_write_complete(self, write_result: WriteResult[str]) -> None:
        results = [json.loads(r) for r in write_result.write_returns if r]
        op_ids = [op for r in results for op in r["operations"]]
        rows = sum(r["rows"] for r in results)
        failures = [f for r in results for f in r["rejected"]]
        if self.wait != "accepted" and op_ids:
            views = self._wait_for(op_ids)
            for view in views:
                failures += _failures(view)
        if failures:
            shown = "; ".join(f"{f['id']!r}: {f['reason']}" for f in failures[:20])
            more = f" (and {len(failures) - 20} more)" if len(failures) > 20 else ""
            raise DatasinkError(f"{len(failures)} of {rows} rows were not indexed into {self.index!r}: {shown}{more}",
                                failures)

    def _wait_for(self, op_ids: list[str]) -> list[dict]:
        """Poll the tracker until every operation is searchable (or completed)."""
        import ray

        from raysearch.actors import registry

        tracker = registry.find(registry.TRACKER)
        if tracker is None:
            raise Unavailable("no raysearch service runs on this Ray cluster (no raysearch:tracker actor)")
        done = (lambda s: s in TERMINAL) if self.wait == "completed" else (lambda s: s != "indexing")
        deadline = time.monotonic() + self.timeout_s
        views: dict[str, dict] = {}
        waiting = list(op_ids)
        while waiting:
            got = ray.get([tracker.get.remote(op) for op in waiting], timeout=120)
            for op, view in zip(waiting, got):
                if view is None:
                    raise DatasinkError(f"operation {op} is unknown to the tracker")
                views[op] = view
            waiting = [op for op in waiting if not done(views[op]["status"])]
            if waiting:
                if time.monotonic() > deadline:
                    raise DatasinkError(f"{len(waiting)} operations of the write to {self.index!r} were not "
                                        f"{self.wait} after {self.timeout_s:.0f}s (e.g. {waiting[0]})")
                time.sleep(self.poll_interval_s)
        return [views[op] for op in op_ids]

    # ----------------------------------------------------------- write tasks
    def write(self, blocks: Iterable[Block], ctx) -> str:
        write_id = self.write_id or (getattr(ctx, "kwargs", None) or {}).get("write_uuid")
        if not write_id:
            raise RuntimeError("RaySearchDatasink.write called before on_write_start")
        ingest = _ingest(self._settings or _service_settings())
        task = getattr(ctx, "task_idx", 0)
        operations, rejected, rows = [], [], 0
        for block_no, block in enumerate(blocks):
            docs = [_row(r) for r in BlockAccessor.for_block(block).iter_rows(public_row_format=True)]
            for part, start in enumerate(range(0, len(docs), self.rows_per_request)):
                op_id = f"raydata-{write_id}-{task}-{block_no}-{part}"
                chunk = docs[start : start + self.rows_per_request]
                for n, doc in enumerate(chunk):  # deterministic generated ids: a retry sends the same rows
                    if doc.get("id") is None:
                        doc["id"] = uuid.uuid5(_ID_NAMESPACE, f"{op_id}:{n}").hex
                accepted = _run(self._submit(ingest, op_id, chunk))
                operations.append(op_id)
                rows += len(chunk)
                rejected += [{"operation_id": op_id, "id": e.get("id"), "reason": e["reason"],
                              "position": e.get("position")} for e in accepted["errors"]]
        return json.dumps({"operations": operations, "rows": rows, "rejected": rejected})

    async def _submit(self, ingest, op_id: str, docs: list[dict]) -> dict:
        """Submit one request; backpressure (too many pending batches) and MongoDB outages wait."""
        body = json.dumps(docs, ensure_ascii=False, default=str).encode()
        deadline = time.monotonic() + self.timeout_s

        def transient(exc: BaseException) -> bool:  # Unavailable: MongoDB or a shard; Overloaded: backpressure
            return isinstance(exc, (Overloaded, Unavailable)) and time.monotonic() < deadline

        return await wait_out_async(lambda: ingest.bulk(self.index, body, "application/json", operation_id=op_id),
                                    transient, Backoff(0.5, 5.0))


def _failures(view: dict) -> list[dict]:
    """Rows an operation did not index: rejected (position), failed in analysis (id), failed batch (ids)."""
    out = []
    for e in view.get("errors", []):
        if "position" in e:
            continue  # rejected up front: already reported by the write task
        base = {"operation_id": view["operation_id"], "batch": e.get("batch"), "reason": e.get("reason", "")}
        if "ids" in e:
            out += [{**base, "id": i} for i in e["ids"]] or [{**base, "id": None}]
        else:
            out.append({**base, "id": e.get("id")})
    return out


def _service_settings() -> dict:
    import ray

    from raysearch.actors import registry

    tracker = registry.find(registry.TRACKER)
    if tracker is None:
        raise Unavailable("no raysearch service runs on this Ray cluster (no raysearch:tracker actor)")
    return ray.get(tracker.service_settings.remote(), timeout=60)


def _ingest(settings: dict):
    """This process's ingest path for these settings (write tasks reuse their workers)."""
    from raysearch.app.service import build_ingest
    from raysearch.config import Settings

    key = json.dumps(settings, sort_keys=True)
    with _ingests_lock:
        if key not in _ingests:
            _ingests[key] = build_ingest(Settings(**settings))
        return _ingests[key]


def _run(coro):
    """Run a coroutine to completion from sync code, also when this thread has a loop running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict = {}

    def target():
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _row(row: Mapping) -> dict:
    doc = {str(k): v for k, v in ((k, _plain(v)) for k, v in row.items()) if v is not None}
    if isinstance(doc.get("id"), int) and not isinstance(doc["id"], bool):
        doc["id"] = str(doc["id"])  # integer id columns (pandas, Arrow) become the string ids the API uses
    return doc


def _plain(value):
    """Arrow/pandas/numpy values as plain JSON values; missing values (None, NaN) as None."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    import numpy as np

    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, Mapping):
        return {str(k): p for k, p in ((k, _plain(v)) for k, v in value.items()) if p is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if type(value).__name__ == "NaTType":
        return None
    return str(value)
