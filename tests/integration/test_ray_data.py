"""Ray Data sink: `dataset.write_datasink(raysearch.RaySearchDatasink(index))` from a
separate driver process on the suite's Ray cluster, then everything checked over HTTP."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import ray

from tests.conftest import debian_docs

DRIVER = Path(__file__).with_name("ray_data_driver.py")
ROOT = Path(__file__).parents[2]


def _write_jsonl(path: Path, docs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    return path


def _drive(path: Path, index: str, wait: str, timeout: float = 600) -> tuple[int, dict]:
    env = dict(os.environ, RAY_ADDRESS=ray.get_runtime_context().gcs_address, RAY_AUTH_MODE="disabled")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    out = subprocess.run([sys.executable, str(DRIVER), str(path), index, wait], capture_output=True, text=True,
                         timeout=timeout, env=env, cwd=str(ROOT))
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    assert lines, f"driver printed no result (exit {out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}"
    return out.returncode, json.loads(lines[-1])


def _operations(http, index: str) -> list[dict]:
    return http.get("/bulk-operations", params={"index": index}).json()["operations"]


def test_debian_sample_written_with_wait_completed(http, tmp_path):
    index = "raydata-debian"
    docs = debian_docs(0, 2000)
    code, result = _drive(_write_jsonl(tmp_path / "debian.jsonl", docs), index, "completed")
    assert code == 0 and result["ok"], result

    # wait="completed": every operation is completed and MongoDB matches the shards, right now.
    ops = _operations(http, index)
    assert ops and all(op["status"] == "completed" for op in ops), [op["status"] for op in ops]
    assert all(op["operation_id"].startswith("raydata-") for op in ops)
    assert sum(op["documents"]["total"] for op in ops) == len(docs)
    assert sum(op["batches"]["persisted"] for op in ops) == sum(op["batches"]["total"] for op in ops)
    verify = http.post(f"/indexes/{index}/verify")
    assert verify.status_code == 200 and verify.json()["ok"], verify.text

    # Every document is retrievable with its content; the count is the distinct ids.
    assert http.get(f"/indexes/{index}").json()["documents"] == len({d["id"] for d in docs})

    def fetch(doc):
        r = http.get(f"/indexes/{index}/documents/{doc['id']}")
        return doc, r.status_code, r.json() if r.status_code == 200 else r.text

    with ThreadPoolExecutor(8) as pool:
        for doc, status, body in pool.map(fetch, docs):
            assert status == 200, (doc["id"], body)
            assert body["document"] == doc

    # Searchable: a document whose title is unique in the sample is found by its title phrase.
    titles: dict[str, list[str]] = {}
    for d in docs:
        titles.setdefault(d.get("title", ""), []).append(d["id"])
    unique = [d for d in docs if len(titles[d.get("title", "")]) == 1 and len(re.findall(r"[a-z]{3,}", d.get("title", "").lower())) >= 2]
    for doc in unique[:: max(1, len(unique) // 40)][:40]:
        phrase = '"' + doc["title"].replace('"', " ") + '"'
        r = http.get(f"/indexes/{index}/search", params={"q": phrase, "fields": "title", "size": 50})
        assert r.status_code == 200, r.text
        assert doc["id"] in [h["id"] for h in r.json()["hits"]], (doc["id"], doc["title"])


def test_rows_without_id_and_an_invalid_field(http, tmp_path):
    index = "raydata-mixed"
    rows = [{"title": f"anonymous raydata row {i}", "body": "generated identifier"} for i in range(30)]
    rows += [{"id": f"named-{i}", "title": f"named raydata row {i}"} for i in range(20)]
    rows.insert(17, {"id": "bad-field", "title": "has a bad field", "$where": "not allowed"})
    code, result = _drive(_write_jsonl(tmp_path / "mixed.jsonl", rows), index, "searchable")

    assert code == 1 and not result["ok"] and result["type"] == "DatasinkError", result
    assert [f["id"] for f in result["failures"]] == ["bad-field"]
    assert "$where" in result["failures"][0]["reason"] and "bad-field" in result["reason"]

    # The others are indexed and searchable (default wait: searchable at return).
    assert http.get(f"/indexes/{index}").json()["documents"] == 50
    found = http.get(f"/indexes/{index}/search", params={"q": "anonymous", "size": 100}).json()
    assert found["total"] == 30
    assert all(re.fullmatch(r"[0-9a-f]{32}", h["id"]) for h in found["hits"])  # generated ids
    assert http.get(f"/indexes/{index}/documents/named-3").json()["document"]["title"] == "named raydata row 3"
    assert http.get(f"/indexes/{index}/documents/bad-field").status_code == 404


def test_a_retried_write_task_submits_nothing_twice(service, http):
    """In process: the same write task (same write id, task index and blocks) run twice."""
    import pyarrow as pa
    from ray.data._internal.execution.interfaces import TaskContext
    from ray.data.datasource.datasink import WriteResult

    from raysearch.datasink import RaySearchDatasink
    from raysearch.storage.mongo import MongoStore

    index = "raydata-retry"
    sink = RaySearchDatasink(index, rows_per_request=40)
    sink.on_write_start()
    blocks = [
        pa.Table.from_pylist([{"id": f"r{i}", "title": f"retried write row {i}"} for i in range(100)]),
        pa.Table.from_pylist([{"title": f"retried write anonymous {i}"} for i in range(30)]),
    ]
    ctx = TaskContext(task_idx=3, op_name="Write")

    # A first attempt that stopped after writing its first request's intake payloads, before the
    # tracker registered the operation: the retry must overwrite them, not fail on their ids.
    settings = ray.get(ray.get_actor("raysearch:tracker", namespace="raysearch").service_settings.remote())
    MongoStore(settings["mongo_uri"], settings["mongo_db"]).put_batches(
        f"raydata-{sink.write_id}-3-0-0", index, [b'{"docs": [], "deletes": []}'])

    first = sink.write(iter(blocks), ctx)
    second = sink.write(iter(blocks), ctx)
    assert json.loads(first)["operations"] == json.loads(second)["operations"]
    assert len(json.loads(first)["operations"]) == 4  # 100 rows -> 3 requests of <= 40, 30 rows -> 1
    sink.on_write_complete(WriteResult(num_rows=260, size_bytes=0, write_returns=[first, second]))

    ops = _operations(http, index)
    assert sorted(op["operation_id"] for op in ops) == sorted(json.loads(first)["operations"])
    assert sum(op["documents"]["total"] for op in ops) == 130
    assert all(op["documents"]["indexed"] == op["documents"]["total"] for op in ops)
    assert http.get(f"/indexes/{index}").json()["documents"] == 130
    anonymous = http.get(f"/indexes/{index}/search", params={"q": "anonymous", "size": 100}).json()
    assert anonymous["total"] == 30  # generated ids are the same on the retry: no duplicates


def test_wait_argument_is_checked():
    from raysearch.datasink import RaySearchDatasink
    from raysearch.errors import InvalidRequest

    with pytest.raises(InvalidRequest):
        RaySearchDatasink("idx", wait="eventually")
    with pytest.raises(InvalidRequest):
        RaySearchDatasink("Not A Valid Name")


def test_write_task_waits_while_the_service_is_overloaded(service, http):
    """Backpressure: while too many batches are pending (here: a limit of 0), a write task
    waits and retries instead of failing; it goes through once the limit allows it."""
    import threading
    import time

    import pyarrow as pa
    from ray.data._internal.execution.interfaces import TaskContext

    from raysearch.datasink import RaySearchDatasink, _ingest

    index = "raydata-overloaded"
    sink = RaySearchDatasink(index)
    sink.on_write_start()
    sink._settings = {**sink._settings, "max_pending_batches": 0}  # a service of its own, always "overloaded"
    overloaded = _ingest(sink._settings)
    timer = threading.Timer(2.0, lambda: setattr(overloaded.settings, "max_pending_batches", 4000))
    timer.start()
    started = time.monotonic()
    try:
        result = json.loads(sink.write(iter([pa.Table.from_pylist([{"id": "o1", "title": "overloaded"}])]),
                                       TaskContext(task_idx=0, op_name="Write")))
    finally:
        timer.cancel()
    assert time.monotonic() - started >= 2.0
    assert len(result["operations"]) == 1 and result["rejected"] == []
    sink._wait_for(result["operations"])
    assert http.get(f"/indexes/{index}/documents/o1").status_code == 200
