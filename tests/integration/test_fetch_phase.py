"""Query phase, then fetch phase: a deep page moves only its own documents.

The shards' query phase answers ids and scores; the page's documents are fetched afterwards
from the shards that hold them (search/coordinator.py). The test wraps the shard actor
handles of an in-cluster SearchService (the same code the ingress runs) and records every
call and answer at the actor boundary: no production switch."""

from __future__ import annotations

import dataclasses
import math

import pytest

from raysearch.index.routing import shard_for
from raysearch.search.merge import FETCH_WITH_QUERY_MAX
from raysearch.actors.clients import RayShard
from tests.conftest import wait_operation
from tests.integration.helpers import ShardSpy as _Spy

INDEX = "fetch-phase"
N_DOCS = 150


@pytest.fixture(scope="module")
def spied(http):
    import raysearch

    # scores differ by term frequency, ids break the ties: a stable order to page through
    docs = [{"id": f"d{i:03d}", "title": " ".join(["phase"] * (1 + i % 9)) + f" filler{i}"} for i in range(N_DOCS)]
    http.delete(f"/indexes/{INDEX}")
    assert http.put(f"/indexes/{INDEX}", json={"shards": 4}).status_code == 201
    op = wait_operation(http, http.post(f"/bulk-indexing/{INDEX}", json=docs).json()["operation_id"])
    assert op["status"] == "completed", op
    rs = raysearch.connect()
    service = rs.service
    meta, target = service.catalog.load(INDEX)
    calls: list = []
    spies = [RayShard(_Spy(shard.handle, n, calls), wire=False) for n, shard in enumerate(target.shards)]  # Ray: spied
    service.catalog._indexes[INDEX] = (meta, dataclasses.replace(target, shards=spies))
    service.catalog._checked[INDEX] = math.inf  # keep the spied handles (no re-read of the record)
    yield rs, calls
    http.delete(f"/indexes/{INDEX}")


def _search(spied, q: str, from_: int, size: int):
    rs, calls = spied
    calls.clear()
    result = rs.search(INDEX, q, size=size, from_=from_)
    return result, [c for c in calls if c[0] == "search"], [c for c in calls if c[0] == "get_documents"]


def test_a_deep_page_moves_only_its_own_documents(spied):
    full, _, _ = _search(spied, "phase", 0, N_DOCS)
    assert full["total"] == N_DOCS and len(full["hits"]) == N_DOCS
    order = [h["id"] for h in full["hits"]]
    from_, size = 120, 10
    result, searches, fetches = _search(spied, "phase", from_, size)
    page = [h["id"] for h in result["hits"]]
    assert page == order[from_:from_ + size]
    assert all(h["document"]["id"] == h["id"] for h in result["hits"])
    # query phase: every shard asked for its top from+size, answering ids and scores only
    assert len(searches) == 4
    for _, _, (plan, k), answer in searches:
        assert k == from_ + size and plan.fetch is False
        assert "documents" not in answer, "a shard shipped stored documents in a deep page's query phase"
        assert all(len(hit) == 3 for hit in answer["hits"])  # [score, id, sort values]
    assert sum(len(answer["hits"]) for *_, answer in searches) == N_DOCS  # 4 x 130 >= 150: every hit's id
    # fetch phase: exactly the page's ids, each asked once, from the shards that hold them
    asked = [doc_id for _, _, (ids,), _ in fetches for doc_id in ids]
    assert sorted(asked) == sorted(page) and len(asked) == size
    assert len({shard for _, shard, _, _ in fetches}) == len(fetches)  # one call per shard
    assert all(shard_for(doc_id, 4) == shard for _, shard, (ids,), _ in fetches for doc_id in ids)
    assert sum(raw is not None for *_, raws in fetches for raw in raws) == size


def test_a_first_page_comes_with_the_query_phase(spied):
    size = 10
    assert size <= FETCH_WITH_QUERY_MAX
    result, searches, fetches = _search(spied, "phase", 0, size)
    assert len(result["hits"]) == size and not fetches  # no second round trip
    for _, _, (plan, k), answer in searches:
        assert k == size and plan.fetch is True
        assert len(answer["documents"]) == len(answer["hits"]) <= size  # at most shards x size documents
    # beyond FETCH_WITH_QUERY_MAX, even a first page is fetched afterwards
    big = FETCH_WITH_QUERY_MAX + 1
    result, searches, fetches = _search(spied, "phase", 0, big)
    assert len(result["hits"]) == big and all("documents" not in answer for *_, answer in searches)
    assert sorted(d for _, _, (ids,), _ in fetches for d in ids) == sorted(h["id"] for h in result["hits"])
