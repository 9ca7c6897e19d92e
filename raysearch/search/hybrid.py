"""kNN and hybrid searches across an index's shards (the coordinator's other path).

    kNN round: every shard's top k (search/knn.py), merged exactly
    -> for hybrid (q with knn, or q with the index's embedder), or when facets are asked:
       the text round, with the kNN hits along so that total and facets count the union
    -> fusion of the two merged lists (search/fusion.py): RRF or linear
    -> search_after on [score, id], the page, its documents (fetch phase), highlights

Fusing after both lists are merged across shards is what makes the answer independent of
the shard count. Results rank by the fused score: a sort by a field is refused.
"""

from __future__ import annotations

import asyncio
from raysearch.analysis import embedding
from raysearch.errors import InvalidRequest
from raysearch.ingest.validation import parse_fields
from raysearch.models import SearchRequest
from raysearch.search import facets, filters, sorting
from raysearch.search.expansion import parse_expand
from raysearch.search.fusion import Fused, fuse, parse_rank
from raysearch.search.highlight import highlight
from raysearch.search.knn import KnnQuery, merge_knn, parse_knn
from raysearch.search.merge import answer, merge_hits
from raysearch.search.plan import AnalyzedClause, QueryPlan, analyze_clauses
from raysearch.search.query import parse_query


async def vector_search(coordinator, index, request: SearchRequest, started: float) -> dict:
    """kNN alone, or hybrid (q with knn, or q with the index's embedder): the kNN round
    (every shard's top k, merged), then -- for hybrid, or for facets -- the text round
    with the kNN hits along (so total and facets count the union), fused
    (search/fusion.py) after both lists are merged, then the page's documents.
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
    knn_hits = merge_knn(await asyncio.gather(*[shard.knn(query) for shard in index.shards]), query.k)
    facet_specs = facets.parse_facets(request.facets, types)
    aclauses: list[AnalyzedClause] = []
    total, partials = len(knn_hits), None
    if text or facet_specs:
        also = tuple(doc_id for _, doc_id in knn_hits)
        shape = dict(filter=node, facets=facet_specs, also=also, match_none=not text,
                     sort=[[sorting.SCORE, sorting.DESC]])
        if text:
            fields = parse_fields(request.fields) or index.default_fields()
            known = await coordinator.known_fields(index)
            clauses = parse_query(q, lambda f: f in known or f in types, coordinator.limits.max_query_clauses)
            aclauses = analyze_clauses(clauses, index.analyzer, fields, request.operator, types,
                                       **index.query_options(request))
            rm3 = parse_expand(request.expand)
            if rm3 is not None and aclauses:
                aclauses = await coordinator._rm3(index, aclauses, fields, node, rm3)
        plan = (await coordinator._plan(index, aclauses, shape)) if aclauses else QueryPlan(**{**shape, "match_none": True})
        window = fusion.window if text else 0
        results = await asyncio.gather(*[shard.search(plan, window) for shard in index.shards])
        if any(r.get("stale") for r in results):
            coordinator._stats_cache.invalidate(index.name)
            plan = await coordinator._plan(index, aclauses, shape, cached=False)
            results = await asyncio.gather(*[shard.search(plan, window) for shard in index.shards])
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
    documents = await coordinator.fetch(index, [f.doc_id for f in page])
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
