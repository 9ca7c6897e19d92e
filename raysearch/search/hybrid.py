"""kNN and hybrid searches across an index's shards (the coordinator's other path).

    no facets: one round -- each shard's kNN top k (search/knn.py) and, for hybrid (q
       with knn, or q with the index's embedder), its text top `window`, in one call; a
       shard's text total counts its own kNN hits, and those outside the merged global
       top k are taken back; the first page's documents come along
    with facets: the kNN round, then the text round with the merged kNN hits along, so
       that total and facets count the union (facet partials cannot be taken back)
    -> fusion of the two merged lists (search/fusion.py): RRF or linear
    -> search_after on [score, id], the page, its documents (those that came with the
       round, else a fetch phase), highlights

Fusing after both lists are merged across shards is what makes the answer independent of
the shard count. Results rank by the fused score: a sort by a field is refused.
"""

from __future__ import annotations

import asyncio

import orjson

from raysearch.analysis import embedding
from raysearch.errors import InvalidRequest
from raysearch.ingest.validation import parse_fields
from raysearch.models import SearchRequest
from raysearch.search import facets, filters, sorting
from raysearch.search.expansion import parse_expand
from raysearch.search.fusion import Fused, fuse, parse_rank
from raysearch.search.highlight import highlight
from raysearch.search.knn import KnnQuery, merge_knn, parse_knn
from raysearch.search.merge import answer, first_page, merge_hits
from raysearch.search.plan import AnalyzedClause, QueryPlan, analyze_clauses
from raysearch.search.query import parse_query


async def vector_search(coordinator, index, request: SearchRequest, started: float) -> dict:
    """kNN alone, or hybrid (q with knn, or q with the index's embedder): the rounds of the
    module's docstring, the fusion of the two merged lists, then the page's documents.
    `coordinator` is the SearchCoordinator (its statistics round, fetch phase and caches),
    `index` its IndexTarget (not imported: search/coordinator.py imports this module)."""
    types, q = index.types, (request.q or "").strip()
    text = q not in ("", "*")
    sort = sorting.parse_sort(request.sort, types)
    if sort != [[sorting.SCORE, sorting.DESC]]:
        raise InvalidRequest("kNN and hybrid results are ranked by score: sort by a field is not supported with "
                             "knn or hybrid (filter instead)")
    after = _score_cursor(request.search_after)
    node = filters.parse_filter(request.filter, types)
    fusion = parse_rank(request.rank)
    if request.knn is not None:
        query = parse_knn(request.knn, index.vectors, types, node)
    else:
        query = _embedded_query(index, q, fusion, node)
    if request.rank is not None and not text:
        raise InvalidRequest("rank fuses q's matches with knn's: give both q and knn")
    facet_specs = facets.parse_facets(request.facets, types)
    aclauses: list[AnalyzedClause] = []
    raws: dict[str, bytes] = {}  # stored documents that came with the query phase
    partials = None
    if text:
        aclauses = await _analyzed_query(coordinator, index, request, q, node)
    if not facet_specs:
        # one round: each shard's kNN and text query phases in one call (search/shard_side.py)
        shape = dict(filter=node, sort=[[sorting.SCORE, sorting.DESC]])
        window = fusion.window if text else 0
        fetch_top = request.size if first_page(request.from_, request.size) else 0
        for cached in (True, False):
            plan = await _text_plan(coordinator, index, aclauses, shape, cached)
            results = await asyncio.gather(*[shard.hybrid(plan, window, query, fetch_top) for shard in index.shards])
            if not any(r.get("stale") for r in results):
                break
            coordinator._stats_cache.invalidate(index.name)
        knn_hits = merge_knn([r["knn"] for r in results], query.k)
        # each shard counted its own kNN hits into its total: take back those outside the global top k
        in_top = {doc_id for _, doc_id in knn_hits}
        total = sum(r["total"] for r in results) - sum(
            1 for r in results for doc_id in r["also_only"] if doc_id not in in_top)
        text_hits = [(score, doc_id) for score, doc_id, _ in
                     merge_hits([r["hits"] for r in results], plan.sort, 0, window)]
        raws = {doc_id: raw for r in results for doc_id, raw in r.get("documents", {}).items() if raw is not None}
    else:
        # total and facets count the union (the text matches and the global top k): the kNN
        # round, then the text round with the merged kNN hits along
        knn_hits = merge_knn(await asyncio.gather(*[shard.knn(query) for shard in index.shards]), query.k)
        also = tuple(doc_id for _, doc_id in knn_hits)
        shape = dict(filter=node, facets=facet_specs, also=also, match_none=not text,
                     sort=[[sorting.SCORE, sorting.DESC]])
        window = fusion.window if text else 0
        for cached in (True, False):
            plan = await _text_plan(coordinator, index, aclauses, shape, cached)
            results = await asyncio.gather(*[shard.search(plan, window) for shard in index.shards])
            if not any(r.get("stale") for r in results):
                break
            coordinator._stats_cache.invalidate(index.name)
        total = sum(r["total"] for r in results)
        partials = [r["facets"] for r in results]
        text_hits = [(score, doc_id) for score, doc_id, _ in
                     merge_hits([r["hits"] for r in results], plan.sort, 0, window)]
    if text:
        ranked = fuse(text_hits, knn_hits, fusion)
    else:
        ranked = [Fused(score, doc_id, None, rank) for rank, (score, doc_id) in enumerate(knn_hits, 1)]
    if after is not None:
        ranked = [f for f in ranked if (f.score, after[1]) < (after[0], f.doc_id)]
    page = ranked[request.from_:request.from_ + request.size]
    documents = {f.doc_id: orjson.loads(raws[f.doc_id]) for f in page if f.doc_id in raws}
    missing = [f.doc_id for f in page if f.doc_id not in documents]
    if missing:  # beyond what came with the round (or no documents came): the fetch phase
        documents.update(await coordinator.fetch(index, missing))
    show_sort = request.sort is not None or request.search_after is not None
    hits = []
    for f in page:
        if f.doc_id not in documents:  # deleted between the rounds
            continue
        hit = {"id": f.doc_id, "score": f.score, "document": documents[f.doc_id]}
        if text:
            hit["ranks"] = {"text": f.text_rank, "knn": f.knn_rank}
        if show_sort:
            hit["sort"] = [f.score, f.doc_id]
        if request.highlight and aclauses:
            hit["highlight"] = highlight(hit["document"], aclauses, index.analyzer)
        hits.append(hit)
    merged_facets = facets.merge(facet_specs, partials, types) if facet_specs else None
    return answer(started, total, hits, merged_facets)

async def _analyzed_query(coordinator, index, request: SearchRequest, q: str, node) -> list[AnalyzedClause]:
    """q's clauses analysed for the index's default (or the request's) fields, with RM3's
    expansion when asked."""
    fields = parse_fields(request.fields) or index.default_fields()
    known = await coordinator.known_fields(index)
    clauses = parse_query(q, lambda f: f in known or f in index.types, coordinator.limits.max_query_clauses)
    aclauses = analyze_clauses(clauses, index.analyzer, fields, request.operator, index.types,
                               **index.query_options(request))
    rm3 = parse_expand(request.expand)
    if rm3 is not None and aclauses:
        aclauses = await coordinator._rm3(index, aclauses, fields, node, rm3)
    return aclauses


async def _text_plan(coordinator, index, aclauses: list[AnalyzedClause], shape: dict, cached: bool) -> QueryPlan:
    """The text query's plan; a plan that matches nothing when q analysed to no clause (only
    stop words), so that only the kNN hits count."""
    if not aclauses:
        return QueryPlan(**{**shape, "match_none": True})
    return await coordinator._plan(index, aclauses, shape, cached=cached)


def _embedded_query(index, q: str, fusion, node) -> KnnQuery:
    """`hybrid: true` without knn: q's own embedding, by the index's embedder."""
    embedder = index.embedder
    if not embedder:
        raise InvalidRequest("hybrid: true needs an index with an embedder in its settings, or give knn a vector")
    if q in ("", "*"):
        raise InvalidRequest("hybrid: true embeds q: give q some words")
    vector = embedding.embed([q])[0]
    if not vector.any():
        raise InvalidRequest(f"hybrid: none of q's words is known to the builtin embedder: {q[:60]!r}")
    target = embedder.target
    k = fusion.window
    return parse_knn({"field": target, "vector": vector.tolist(), "k": k, "num_candidates": max(k, 100)},
                     index.vectors, index.types, node)


def _score_cursor(values) -> tuple[float, str] | None:
    """search_after of a kNN or hybrid search: the last hit's [score, id]."""
    if values is None:
        return None
    if (not isinstance(values, list) or len(values) != 2 or isinstance(values[0], bool)
            or not isinstance(values[0], (int, float)) or not isinstance(values[1], str)):
        raise InvalidRequest("search_after of a kNN or hybrid search is the last hit's sort values: [score, id]")
    return float(values[0]), values[1]
