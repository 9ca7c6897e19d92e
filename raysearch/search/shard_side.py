"""What one shard does for a search, on its own ShardIndex: its part of the statistics
round, and its query phase. The ShardStore actor serves these (actors/shard_store.py);
LocalShard serves them in process, for the coordinator's unit tests and notebooks."""

from __future__ import annotations

import numpy as np

from raysearch.index.shard_index import ShardIndex
from raysearch.search.executor import execute
from raysearch.search.knn import KnnQuery, ranked_knn, shard_knn
from raysearch.search.plan import QueryPlan

STALE = {"stale": True, "total": 0, "hits": [], "facets": {}}


def shard_stats(index: ShardIndex, fields: list[str], pairs: list, prefixes: list, max_expansions: int,
                fuzzy: list = ()) -> dict:
    """Field statistics, document frequencies, prefix expansions and fuzzy candidates
    ((field, term, edits, limit) each: search/fuzzy.py) of this shard, with the version they
    are of (None if an apply changed them while they were read)."""
    pairs = [tuple(p) for p in pairs]
    version = index.stats_version()
    out = {
        "fields": index.field_stats(fields),
        "pairs": pairs,
        "doc_freqs": index.doc_freqs(pairs),
        "prefixes": prefixes,
        "expansions": [index.expand_prefix(f, p, max_expansions + 1) for f, p in prefixes],
    }
    if fuzzy:
        out["fuzzy"] = list(fuzzy)
        out["fuzzy_candidates"] = [index.expand_fuzzy(f, t, e, limit) for f, t, e, limit in fuzzy]
    out["version"] = version if version is not None and version == index.stats_version() else None
    return out


def shard_dictionary(index: ShardIndex, max_terms: int) -> dict:
    """This shard's whole term dictionary (search/stats_cache.py): every field's statistics
    and field -> (terms, document frequencies), with the version they are of (None if an
    apply changed them while they were read); only {"too_large": True} past `max_terms`."""
    version = index.stats_version()
    if index.term_count_total() > max_terms:
        return {"version": version, "too_large": True}
    out = {"fields": index.field_stats(index.fields()), "terms": index.term_dictionary()}
    out["version"] = version if version is not None and version == index.stats_version() else None
    return out


def shard_search(index: ShardIndex, shard: int, plan: QueryPlan, k: int) -> dict:
    """Query phase: total, top k as [score, id, sort values], facet partials; with plan.fetch
    (a first page), also the stored documents of its hits (query and fetch in one round: at
    most shards x size documents travel, and a round trip is saved). A plan made from
    statistics this shard no longer has is refused: {"stale": True} (the coordinator plans
    again from fresh statistics)."""
    if _stale(index, shard, plan):
        return dict(STALE)
    result = execute(index, plan, k)
    if plan.fetch and result["hits"]:
        result["documents"] = index.get_documents([h[1] for h in result["hits"]])
    return result


def shard_hybrid(index: ShardIndex, shard: int, plan: QueryPlan, window: int, query: KnnQuery,
                 fetch_top: int = 0, exact_below: int = 10_000) -> dict:
    """A kNN or hybrid search's one round on this shard: its kNN top k ("knn"), then the text
    query's top `window` (none for kNN alone: plan.match_none) with those kNN hits counted
    into the total (by document number), and "also_only": the kNN hits no text clause
    matched, so that the coordinator can take back those that miss the global top k (the
    union it counts is the text matches and the global top k). With `fetch_top`, the stored
    documents of the first `fetch_top` of each list come along ("documents": id -> bytes):
    a first page usually needs no fetch round."""
    if _stale(index, shard, plan):
        return dict(STALE)
    ranked = ranked_knn(index, query, exact_below)
    knn_hits = [[score, doc_id] for score, doc_id, _ in ranked]
    if plan.match_none and not plan.facets:  # kNN alone: its hits (live, filtered) are the matches
        result = {"total": len(knn_hits), "hits": [], "facets": {}, "also_only": [doc_id for _, doc_id in knn_hits]}
    else:
        numbers = np.fromiter((number for _, _, number in ranked), dtype=np.int64, count=len(ranked))
        result = execute(index, plan, window, also_numbers=numbers)
    result["knn"] = knn_hits
    if fetch_top:
        wanted = list(dict.fromkeys([h[1] for h in result["hits"][:fetch_top]]
                                    + [doc_id for _, doc_id in knn_hits[:fetch_top]]))
        result["documents"] = dict(zip(wanted, index.get_documents(wanted)))
    return result


def _stale(index: ShardIndex, shard: int, plan: QueryPlan) -> bool:
    """Was the plan made from statistics this shard no longer has?"""
    expected = plan.versions
    return expected is not None and (shard >= len(expected) or expected[shard] != index.stats_version())


class LocalShard:
    """A ShardClient (search/coordinator.py) over an in-process ShardIndex: no Ray."""

    def __init__(self, index: ShardIndex, shard: int):
        self.index, self.shard = index, shard

    async def stats(self, fields: list[str], pairs: list, prefixes: list, max_expansions: int,
                    fuzzy: list = ()) -> dict:
        return shard_stats(self.index, fields, pairs, prefixes, max_expansions, fuzzy)

    async def search(self, plan: QueryPlan, k: int) -> dict:
        return shard_search(self.index, self.shard, plan, k)

    async def dictionary(self, max_terms: int) -> dict:
        return shard_dictionary(self.index, max_terms)

    async def knn(self, query: KnnQuery) -> list:
        return shard_knn(self.index, query)

    async def hybrid(self, plan: QueryPlan, window: int, query: KnnQuery, fetch_top: int = 0) -> dict:
        return shard_hybrid(self.index, self.shard, plan, window, query, fetch_top)

    async def get_documents(self, doc_ids: list[str]) -> list[bytes | None]:
        return self.index.get_documents(doc_ids)

    async def fields(self) -> list[str]:
        return self.index.fields()
