"""The whole search flow across an index's shards, over a small `ShardClient` protocol.

    limits -> parse and analyse -> statistics (from the cache, or a round to every shard,
    plus a round for prefix expansions) -> QueryPlan -> query phase on every shard (a
    shard whose statistics moved past a cached plan answers `stale`: plan again, fresh)
    -> exact merge -> fetch phase (first pages come back with the query phase) ->
    highlighting -> the answer

The HTTP API, the Elasticsearch layer and the in-cluster client call `search`; its unit
tests run it over in-process shards (no Ray). Shards are reached only through
`ShardClient`: actors/shard_client.py adapts a ShardStore actor, LocalShard an
in-process ShardIndex.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Protocol, Sequence

import orjson

from raysearch import schema
from raysearch.analysis.analyzer import ALL_FIELD, Analyzer
from raysearch.errors import InvalidRequest
from raysearch.ingest.validation import parse_fields
from raysearch.index.routing import shard_for
from raysearch.models import EmbedderSettings, IndexSettings, SearchRequest
from raysearch.search import facets, filters, sorting
from raysearch.search.expansion import expand, parse_expand
from raysearch.search.highlight import highlight
from raysearch.search.knn import KnnQuery
from raysearch.search.hybrid import vector_search
from raysearch.search.merge import answer, first_page, merge_hits
from raysearch.search.plan import (AnalyzedClause, GlobalStats, QueryPlan, analyze_clauses, build_plan, prefix_pairs,
                                   stats_request)
from raysearch.search.query import parse_query
from raysearch.search.stats_cache import StatsCache

log = logging.getLogger("raysearch.search")
DICTIONARY_RETRY_S = 60.0  # after shards said their dictionary is over the limit
KNOWN_FIELDS_TTL_S = 2.0  # how long the fields that have documents are taken as known


class ShardClient(Protocol):
    """What the coordinator asks of one shard (ShardStore's read methods, awaited)."""

    async def stats(self, fields: list[str], pairs: list, prefixes: list, max_expansions: int,
                    fuzzy: list = ()) -> dict: ...
    async def search(self, plan: QueryPlan, k: int) -> dict: ...
    async def dictionary(self, max_terms: int) -> dict: ...
    async def knn(self, query: KnnQuery) -> list: ...
    async def hybrid(self, plan: QueryPlan, window: int, query: KnnQuery, fetch_top: int = 0) -> dict: ...
    async def get_documents(self, doc_ids: list[str]) -> list[bytes | None]: ...
    async def fields(self) -> list[str]: ...


@dataclass(frozen=True)
class SearchLimits:
    """A request's bounds (config.Settings has them, with the same names)."""

    max_query_chars: int = 10_000
    max_size: int = 10_000
    max_window: int = 100_000
    max_query_clauses: int = 1024
    max_prefix_expansions: int = 128
    max_fuzzy_expansions: int = 50
    stats_dictionary_max_terms: int = 1_000_000  # not a request's bound: see search/stats_cache.py

    @classmethod
    def of(cls, settings) -> "SearchLimits":
        return cls(**{name: getattr(settings, name) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class IndexTarget:
    """An index as a search sees it: its name, typed settings (models.IndexSettings, as
    indexmeta.parse reads them from the index record), analyzer and shards (in order)."""

    name: str
    settings: IndexSettings
    analyzer: Analyzer
    shards: Sequence[ShardClient]
    # Derived from the settings once (every search and every bulk reads them):
    types: dict[str, str] = dataclass_field(init=False)  # the typed (non-text) fields: field -> type
    vectors: dict[str, schema.VectorSpec] = dataclass_field(init=False)  # vector fields: field -> VectorSpec

    def __post_init__(self):
        declared = {name: spec.stored() for name, spec in self.settings.fields.items()}
        object.__setattr__(self, "types", schema.exact_fields(declared))
        object.__setattr__(self, "vectors", schema.vector_fields(declared))

    @property
    def embedder(self) -> EmbedderSettings | None:
        """The index's embedder, if it has one."""
        return self.settings.embedder

    def query_options(self, request: SearchRequest) -> dict:
        """How q's words are read: typo tolerance (an index setting), the last word as a prefix."""
        q = request.q or ""
        return {"typo_tolerance": self.settings.typo_tolerance,
                "prefix_last": request.prefix_last and bool(q) and not q[-1].isspace()}

    def default_fields(self) -> list[tuple[str, float]]:
        """Declared text fields with their boosts, else `_all` (typed fields are not words)."""
        text = [(name, spec.boost) for name, spec in self.settings.fields.items() if spec.type == schema.TEXT]
        return text or [(ALL_FIELD, 1.0)]


class SearchCoordinator:
    """Searches indexes through their shards. Holds what it learns between searches:
    summed statistics (one-round searches, search/stats_cache.py) and each index's fields."""

    def __init__(self, limits: SearchLimits, stats_settle_s: float = 1.0):
        self.limits = limits
        self._stats_cache = StatsCache(settle_s=stats_settle_s)
        self._fields_cache: dict[str, tuple[float, set[str]]] = {}
        self._dictionary_loads: dict[str, asyncio.Task] = {}  # index -> its load running now
        self._dictionary_refused: dict[str, float] = {}  # index -> when its shards said too large

    def forget(self, index: str) -> None:
        """Drop what is kept of an index (it was deleted, or re-created)."""
        self._stats_cache.invalidate(index)
        self._fields_cache.pop(index, None)

    # ---------------------------------------------------------------- search
    async def search(self, index: IndexTarget, request: SearchRequest) -> dict:
        """Query phase on every shard (ids, scores, sort values, facet partials), merge,
        then a fetch phase for the page's documents only, from the shards that hold them."""
        started = time.perf_counter()
        self._check_limits(request)
        if request.knn is not None or request.hybrid:
            return await vector_search(self, index, request, started)  # search/hybrid.py
        types = index.types
        q = request.q if request.q is not None else ""
        sort = sorting.parse_sort(request.sort, types)
        shape = dict(filter=filters.parse_filter(request.filter, types), sort=sort,
                     facets=facets.parse_facets(request.facets, types),
                     search_after=sorting.parse_after(request.search_after, sort, types),
                     # A first page travels with the query phase (each shard sends its own top
                     # `size`); a deeper page is fetched afterwards from the shards holding it.
                     fetch=first_page(request.from_, request.size),
                     explain=request.explain)
        aclauses: list[AnalyzedClause] = []
        if q.strip() in ("", "*"):
            plan = QueryPlan(match_all=True, **shape)
        else:
            fields = parse_fields(request.fields) or index.default_fields()
            known = await self.known_fields(index)
            clauses = parse_query(q, lambda f: f in known or f in types, self.limits.max_query_clauses)
            aclauses = analyze_clauses(clauses, index.analyzer, fields, request.operator, types,
                                       **index.query_options(request))
            if not aclauses:
                return answer(started, 0, [], facets.merge(shape["facets"], [], types) if shape["facets"] else None)
            rm3 = parse_expand(request.expand)
            if rm3 is not None:
                aclauses = await self._rm3(index, aclauses, fields, shape["filter"], rm3)
            plan = await self._plan(index, aclauses, shape)
        k = request.from_ + request.size
        results = await asyncio.gather(*[shard.search(plan, k) for shard in index.shards])
        if any(r.get("stale") for r in results):  # planned from cached statistics a shard has moved past
            self._stats_cache.invalidate(index.name)
            plan = await self._plan(index, aclauses, shape, cached=False)
            results = await asyncio.gather(*[shard.search(plan, k) for shard in index.shards])
        total = sum(r["total"] for r in results)
        page = merge_hits([r["hits"] for r in results], plan.sort, request.from_, k)
        if plan.fetch:
            raws = {h[1]: raw for r in results for h, raw in zip(r["hits"], r.get("documents", ())) if raw is not None}
            documents = {doc_id: orjson.loads(raws[doc_id]) for _, doc_id, _ in page if doc_id in raws}
        else:
            documents = await self.fetch(index, [doc_id for _, doc_id, _ in page])
        hits = []
        show_sort = request.sort is not None or request.search_after is not None
        for score, doc_id, values in page:
            if doc_id not in documents:  # deleted between the query and the fetch phase
                continue
            hit = {"id": doc_id, "score": score, "document": documents[doc_id]}
            if show_sort:
                hit["sort"] = [schema.display(types.get(f), v) if v is not None else None
                               for (f, _), v in zip(plan.sort, values)] + [doc_id]
            hits.append(hit)
        if plan.explain:
            explanations = {doc_id: e for r in results for doc_id, e in r.get("explanations", {}).items()}
            for hit in hits:
                hit["explanation"] = explanations.get(hit["id"])
        if request.highlight and aclauses:
            for hit in hits:
                hit["highlight"] = highlight(hit["document"], aclauses, index.analyzer)
        merged_facets = facets.merge(plan.facets, [r["facets"] for r in results], types) if plan.facets else None
        return answer(started, total, hits, merged_facets)

    async def _rm3(self, index: IndexTarget, aclauses: list[AnalyzedClause], fields, node, rm3) -> list:
        """The query expanded by RM3 (search/expansion.py) from its own top documents."""
        shape = dict(filter=node, sort=[[sorting.SCORE, sorting.DESC]], fetch=True)
        for cached in (True, False):
            plan = await self._plan(index, aclauses, shape, cached=cached)
            results = await asyncio.gather(*[shard.search(plan, rm3.docs) for shard in index.shards])
            if not any(r.get("stale") for r in results):
                break
            self._stats_cache.invalidate(index.name)
        raws = {h[1]: raw for r in results for h, raw in zip(r["hits"], r.get("documents", ())) if raw is not None}
        top = merge_hits([r["hits"] for r in results], plan.sort, 0, rm3.docs)
        feedback = [(score, orjson.loads(raws[doc_id])) for score, doc_id, _ in top if doc_id in raws]
        return expand(aclauses, feedback, fields, index.analyzer, rm3)

    def _check_limits(self, request: SearchRequest) -> None:
        limits = self.limits
        q = request.q or ""
        if len(q) > limits.max_query_chars:
            raise InvalidRequest(f"query is {len(q)} characters; the limit is {limits.max_query_chars}")
        if request.size > limits.max_size:
            raise InvalidRequest(f"size {request.size} is over the limit of {limits.max_size}")
        # With or without search_after: every shard ranks its top from + size, so the window
        # bounds each request's work (search_after pages deeper, from the cursor, not by from).
        if request.from_ + request.size > limits.max_window:
            raise InvalidRequest(f"from + size is over the limit of {limits.max_window}; "
                                 f"page deeper with search_after")

    async def _plan(self, index: IndexTarget, aclauses: list[AnalyzedClause], shape: dict,
                    cached: bool = True) -> QueryPlan:
        """Global statistics, then the scoring plan. From the cache when it holds every field
        and term (the plan then names the shard versions it assumes, and goes out in the query
        phase's one round: search/stats_cache.py), else from a round of calls to every shard
        (which then fills the cache)."""
        req = stats_request(aclauses, self.limits.max_fuzzy_expansions)
        hit = self._stats_cache.lookup(index.name, req) if cached else None
        if hit is not None and len(hit[1]) == len(index.shards):
            stats, versions = hit
            return build_plan(aclauses, stats, versions=versions, **shape)
        m = self.limits.max_prefix_expansions
        parts = await asyncio.gather(*[shard.stats(req.fields, req.pairs, req.prefixes, m, req.fuzzy)
                                       if req.fuzzy else shard.stats(req.fields, req.pairs, req.prefixes, m)
                                       for shard in index.shards])
        stats = GlobalStats.merge(parts, m, self.limits.max_fuzzy_expansions, set(req.lenient))
        if self._stats_cache.store(index.name, [p.get("version") for p in parts], req, stats):
            self._load_dictionary_soon(index)
        extra = prefix_pairs(stats)
        prefix_dfs: dict[tuple[str, str], int] = {}
        if extra:
            more = await asyncio.gather(*[shard.stats([], extra, [], m) for shard in index.shards])
            for part in more:
                for pair, df in zip(part["pairs"], part["doc_freqs"]):
                    prefix_dfs[tuple(pair)] = prefix_dfs.get(tuple(pair), 0) + df
        return build_plan(aclauses, stats, prefix_dfs, **shape)

    def _load_dictionary_soon(self, index: IndexTarget) -> None:
        """Start loading the index's whole term dictionary into the statistics cache, in the
        background (search/stats_cache.py), unless a load runs, or the shards said it is
        too large less than a minute ago."""
        max_terms = self.limits.stats_dictionary_max_terms
        refused = self._dictionary_refused.get(index.name)
        if (max_terms <= 0 or index.name in self._dictionary_loads
                or (refused is not None and time.monotonic() - refused < DICTIONARY_RETRY_S)):
            return
        self._dictionary_loads[index.name] = asyncio.get_running_loop().create_task(self._load_dictionary(index))

    async def background_done(self) -> None:
        """Until the dictionary loads running now have finished (tests, notebooks)."""
        while self._dictionary_loads:
            await asyncio.gather(*self._dictionary_loads.values(), return_exceptions=True)

    async def _load_dictionary(self, index: IndexTarget) -> None:
        try:
            parts = await asyncio.gather(*[s.dictionary(self.limits.stats_dictionary_max_terms) for s in index.shards])
            if any(p.get("too_large") for p in parts):
                self._dictionary_refused[index.name] = time.monotonic()
                return
            fields, dictionary = await asyncio.to_thread(_sum_dictionaries, parts)
            self._stats_cache.install_dictionary(index.name, [p["version"] for p in parts], fields, dictionary)
        except Exception:  # noqa: BLE001 - an optimisation: searches go on with two rounds
            log.debug("loading the term dictionary of %s failed", index.name, exc_info=True)
        finally:
            self._dictionary_loads.pop(index.name, None)

    # ------------------------------------------------------------ documents
    async def fetch(self, index: IndexTarget, doc_ids: list[str]) -> dict[str, dict]:
        """Fetch phase: the stored documents of one page, one call per shard that holds some."""
        by_shard: dict[int, list[str]] = {}
        for doc_id in doc_ids:
            by_shard.setdefault(shard_for(doc_id, len(index.shards)), []).append(doc_id)
        parts = await asyncio.gather(*[index.shards[n].get_documents(ids) for n, ids in by_shard.items()])
        out = {}
        for ids, raws in zip(by_shard.values(), parts):
            for doc_id, raw in zip(ids, raws):
                if raw is not None:
                    out[doc_id] = orjson.loads(raw)
        return out

    async def known_fields(self, index: IndexTarget) -> set[str]:
        """Fields that have documents; `word:` for any other word is read as plain text."""
        cached = self._fields_cache.get(index.name)
        if cached and time.monotonic() - cached[0] < KNOWN_FIELDS_TTL_S:
            return cached[1]
        names: set[str] = set()
        for part in await asyncio.gather(*[shard.fields() for shard in index.shards]):
            names.update(part)
        self._fields_cache[index.name] = (time.monotonic(), names)
        return names


def _sum_dictionaries(parts: list[dict]) -> tuple[dict[str, tuple[int, int]], dict[str, dict[str, int]]]:
    """Shards' dictionaries (ShardStore.dictionary) summed: field statistics, field -> term -> df."""
    fields: dict[str, tuple[int, int]] = {}
    dictionary: dict[str, dict[str, int]] = {}
    for part in parts:
        for f, (docs, length) in part["fields"].items():
            had = fields.get(f, (0, 0))
            fields[f] = (had[0] + docs, had[1] + length)
        for f, (terms, dfs) in part["terms"].items():
            into = dictionary.get(f)
            if into is None:
                dictionary[f] = dict(zip(terms, dfs))
                continue
            get = into.get
            for t, n in zip(terms, dfs):
                into[t] = get(t, 0) + n
    return fields, dictionary
