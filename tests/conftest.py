"""Shared fixtures: a real MongoDB wire-protocol server (SecantusDB, a child
process) and a real local service (Ray + Serve + RocksDB shards) on top of it."""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # local tests: no Ray token auth

CORPORA = Path(__file__).resolve().parent / "data" / "corpora"  # see its README.md
TERMINAL = ("completed", "partially_completed", "failed")


def load_jsonl(path: Path, limit: int | None = None) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    out = []
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if limit is not None and len(out) >= limit:
                break
            out.append(json.loads(line))
    return out


DEBIAN_SAMPLE = CORPORA / "debian-sample" / "docs.jsonl.gz"
_debian_sample: list[dict] = []


def debian_docs(start: int, stop: int) -> list[dict]:
    """Records start..stop of an endless sequence made of the 12,000-record
    Debian sample (distinct ids): position i is sample record i % 12,000, its id
    suffixed `~k` (k = i // 12,000) from the second round on, so distinct
    positions keep distinct ids. Each call returns fresh dicts."""
    if not _debian_sample:
        _debian_sample.extend(load_jsonl(DEBIAN_SAMPLE))
    n = len(_debian_sample)
    out = []
    for i in range(start, stop):
        doc, k = dict(_debian_sample[i % n]), i // n
        if k:
            doc["id"] = f"{doc['id']}~{k}"
        out.append(doc)
    return out


@pytest.fixture(scope="session")
def corpora() -> Path:
    if not CORPORA.exists():
        pytest.fail(f"corpora not found at {CORPORA}")
    return CORPORA


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory):
    from raysearch.storage.local_mongo import LocalMongo

    root = tmp_path_factory.mktemp("mongo")
    server = LocalMongo(str(root / "data"), log_path=str(root / "mongo.log")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def service(tmp_path_factory, mongo_server):
    from raysearch.config import Settings
    from raysearch.runner import LocalService
    from raysearch.ports import free_port

    settings = Settings(
        data_dir=str(tmp_path_factory.mktemp("data")),
        mongo_uri=mongo_server.uri,
        port=free_port(),
        workers=int(os.environ.get("RAYSEARCH_TEST_WORKERS", "4")),
        shards=4,  # more than the default 2: every test spreads its documents over 4 shards
        backoff_base_s=0.1,
        webhook_allowed_hosts="127.0.0.1",  # the tests' webhook receivers
        ann_min_vectors=500,  # so that a test's thousand vectors get an ANN graph (test_vector_search.py)
    )
    svc = LocalService(settings, dashboard=False).start()
    _shared.append(svc)
    yield svc
    _shared.clear()
    svc.stop()


_shared: list = []  # the session's shared service, once a test has started it


def _index_names(svc) -> set[str]:
    import httpx

    listing = httpx.get(f"{svc.url}/indexes", timeout=120).json()
    return {entry["index"] for entry in listing["indexes"]}


@pytest.fixture(scope="module", autouse=True)
def delete_module_indexes():
    """After each test file, delete the indexes it made on the shared service.
    Every index holds shard actors (processes) for the rest of the session, and
    hundreds of idle ones slowed the late tests of the suite several-fold."""
    import httpx

    try:
        before = _index_names(_shared[0]) if _shared else set()
    except httpx.HTTPError:
        before = None  # the service is unreachable: leave its indexes alone
    yield
    if not _shared or before is None:
        return
    svc = _shared[0]
    try:
        for name in sorted(_index_names(svc) - before):
            httpx.delete(f"{svc.url}/indexes/{name}", timeout=300)
    except httpx.HTTPError as exc:  # a test that broke the service says so itself
        print(f"could not delete this file's indexes: {exc!r}")


@pytest.fixture(scope="session")
def http(service):
    import httpx

    with httpx.Client(base_url=service.url, timeout=120) as client:
        yield client


def wait_operation(http, op_id: str, timeout_s: float = 600) -> dict:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        op = http.get(f"/bulk-operations/{op_id}").json()
        if op["status"] in TERMINAL:
            return op
        time.sleep(0.25)
    raise AssertionError(f"operation {op_id} not finished after {timeout_s}s: {op}")


@pytest.fixture(scope="module")
def es(service):
    """The official Elasticsearch client on the service's /_elastic API."""
    from elasticsearch import Elasticsearch

    client = Elasticsearch(service.url + "/_elastic", request_timeout=300)
    yield client
    client.close()


@pytest.fixture
def no_ray(monkeypatch):
    """Unit tests that must not start Ray: fail loudly if anything calls ray.init."""
    import ray

    def refuse(*_, **__):
        raise AssertionError("this unit test must not start Ray")

    monkeypatch.setattr(ray, "init", refuse)
