"""Shard-side execution of a plan: match, filter, count facets, rank, keep the top k.

Scores are accumulated in dense numpy arrays indexed by shard-local document
numbers: one vectorised BM25 expression per (field, term) posting list. Each
document's score is summed in clause order, the same on any number of shards.
A plan without clauses matches every live document (score 1, like match_all).
Filters and ranges are masks from doc values (filters.py) and never score.

The result is the query phase only -- (score, id, sort values) per hit, the
total and the facet partials -- the ingress fetches the final page's documents.

Dynamic pruning (MaxScore, Turtle & Flood 1995, over whole posting lists): a
free-text query (only single-term SHOULD clauses) ranked by score does not score
every match. Each list's largest possible contribution is bounded from its largest
tf and smallest field length; lists are scored from the highest bound down, and
after each one the k-th best partial score among eligible documents is a floor
for the final k-th score. Once the bounds of the lists left sum below that floor,
no document found only in them can reach the top k: they are not scored at all,
only looked up (binary search) for the few documents that still can. Those are
then scored again from zero in clause order, the same float additions as the
exhaustive path, so scores and ranking are bit-identical to it. Matches are still
marked in every list (a boolean scatter, far cheaper than scoring), so totals and
facets stay exact.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from raysearch.analysis.analyzer import ALL_FIELD
from raysearch.index.shard_index import ShardIndex
from raysearch.search import facets, filters
from raysearch.search.bm25 import Bm25Weight
from raysearch.search.explain import explain_hits
from raysearch.search.plan import PlanClause, QueryPlan, TermPart
from raysearch.search.query import MUST, MUST_NOT, PHRASE, RANGE, SHOULD
from raysearch.search.sorting import DESC, SCORE

DEFAULT_SORT = [[SCORE, DESC]]


# Below this many postings in all a query's lists, scoring them all costs less than pruning.
PRUNE_MIN_POSTINGS = 50_000
# Relative slack on the pruning bounds: partial and final scores are float sums taken in
# different orders, a few ulps apart; a document within the slack is kept, never dropped.
_SLACK = 1e-9
_FLOOR_SAMPLE = 4096  # at most this many partial scores per list are partitioned for the floor
_TOP_SAMPLE = 4096  # _kth_smallest: the sample that bounds the k-th best of many matches
# An AND over the intersection of its lists only while its shortest list holds at most this
# share of the shard's documents: a binary search per document of a list that long costs
# about what the general path's passes do (query_phase.py --all-words, 511k documents, 300
# corpus queries: p90 1.9 / 1.5 / 1.5 / 1.7 ms at 0.05 / 0.2 / 0.5 / 1.0, the general path 3.5-5.8)
CONJUNCTION_MAX_SHARE = 0.2


def execute(shard: ShardIndex, plan: QueryPlan, k: int, also_numbers: np.ndarray | None = None) -> dict:
    """{"total": matches, "hits": [[score, id, sort values]] best first (at most k), "facets": partials}.
    `also_numbers`: plan.also given as document numbers (a hybrid round's own kNN hits)."""
    doc_ids = shard.stats.doc_ids
    n = len(doc_ids)  # documents numbered later than this query's start are not seen
    top_candidates = None  # the only documents that can make the top k, when pruned
    # the paths over postings alone count a hybrid round's kNN hits too, but no facets over them
    postings_only = also_numbers is None or not plan.facets
    single = _single_term(plan) if postings_only else None
    if single is not None:
        return _execute_single_term(shard, plan, single, n, k, also_numbers)
    conjunction = _conjunctive_terms(plan) if postings_only else None
    if conjunction is not None and (
            out := _execute_conjunction(shard, plan, conjunction, n, k, also_numbers)) is not None:
        return out
    if plan.match_none:  # a kNN search's counting round: only plan.also counts
        candidates, scores = np.zeros(n, dtype=bool), np.zeros(n)
    elif plan.match_all:
        candidates = shard.stats.live_mask(n)
        scores = np.ones(n)
    elif (terms := _prunable_terms(plan, k)) is not None:
        eligible = shard.stats.live_mask(n)
        if plan.filter:
            eligible &= filters.evaluate(plan.filter, shard, n)
        candidates, scores, top_candidates = _match_pruned(shard, terms, plan.avgdl, n, k, eligible)
    else:
        candidates, scores = _match(shard, plan, n)
        # A document re-indexed or deleted while this query ran may still sit in posting
        # arrays read (or cached) before its removal: only numbers that hold a document count.
        candidates &= shard.stats.live_mask(n)
    if plan.filter and top_candidates is None:
        candidates &= filters.evaluate(plan.filter, shard, n)
    counted = candidates
    only = None  # a hybrid round's kNN hits that no clause matched (live, filtered), by number
    uncounted = 0  # how many of them `counted` leaves out
    if also_numbers is not None and not plan.facets:
        # Counted without a mask of the shard's size: the hits are at most k, and at 500k
        # documents each pass over such a mask is ~0.03 ms
        hits = _live_hits(shard, plan, also_numbers, n)
        only = hits[~candidates[hits]]
        uncounted = len(only)
    elif plan.also or also_numbers is not None:
        # a hybrid search's kNN hits: counted in the total and facets (the union), not ranked here
        if also_numbers is None:
            extra = shard.docnum_mask(plan.also, n)
        else:
            extra = np.zeros(n, dtype=bool)
            extra[also_numbers[also_numbers < n]] = True
        extra &= shard.stats.live_mask(n)
        if plan.filter:
            extra &= filters.evaluate(plan.filter, shard, n)
        counted = candidates | extra
        if also_numbers is not None:
            only = np.flatnonzero(extra & ~candidates)
    total = int(np.count_nonzero(counted)) + uncounted  # a popcount: 0.02 ms at 511k documents
    partials = facets.shard_partials(plan.facets, shard, counted) if plan.facets else {}
    out = {"total": total, "hits": [], "facets": partials}
    if only is not None:
        # the kNN hits counted here that no text clause matched: a hybrid round that sends its
        # shard's own kNN hits (search/hybrid.py) takes back those that miss the global top k
        out["also_only"] = [doc_ids[i] for i in only.tolist() if doc_ids[i] is not None]
    if k <= 0 or not candidates.any():
        return out
    numbers = np.flatnonzero(candidates) if top_candidates is None else top_candidates
    sort = plan.sort or DEFAULT_SORT
    keys, columns = _sort_keys(shard, sort, numbers, scores, n)
    after = plan.search_after
    if after is not None:
        keep = _after_mask(shard, sort, keys, columns, numbers, after)
        numbers, keys = numbers[keep], [a[keep] for a in keys]
    top = _top(numbers, keys, doc_ids, k)
    hits, hit_numbers = [], []
    for number, key_values in top:
        doc_id = doc_ids[number]
        if doc_id is None:  # removed by an apply on another thread since the mask was read
            continue
        hit_numbers.append(number)
        values = []
        for (field, order), value, column in zip(sort, key_values, columns):
            if math.isinf(value):  # a Python float: math's test (0.04 us), not numpy's (0.48 us)
                values.append(None)
                continue
            value = -value if order == DESC else value
            values.append(float(value) if column is None else column.display(value))
        hits.append([float(scores[number]), doc_id, values])
    out["hits"] = hits
    if plan.explain:
        explained = explain_hits(shard, plan, hit_numbers, [h[0] for h in hits])
        out["explanations"] = {h[1]: e for h, e in zip(hits, explained)}
    return out


def _match(shard: ShardIndex, plan: QueryPlan, n: int):
    """(candidates mask, scores) over document numbers < n.

    The masks and the score array are the query's only arrays of the shard's size: a
    single-term clause scatters its contributions straight into `scores` and its
    matches into the SHOULD mask (no per-clause temporaries of size n), which is the
    same arithmetic, in the same clause order, as summing a per-clause array."""
    avgdl = plan.avgdl
    scores = np.zeros(n)
    should = np.zeros(n, dtype=bool)
    must_hits = None
    excluded = None
    musts = 0
    for clause in plan.clauses:
        occur = clause.occur
        if occur == SHOULD and clause.single_term:
            _add_term(shard, clause.parts[0], avgdl, n, scores, should)
            continue
        matched, contrib = _clause_scores(shard, clause, avgdl, n)
        if occur == MUST_NOT:
            excluded = matched if excluded is None else excluded | matched
            continue
        if contrib is not None:
            scores += contrib
        if occur == MUST:
            musts += 1
            must_hits = matched.astype(np.int32) if must_hits is None else must_hits + matched
        else:
            should |= matched
    candidates = (must_hits == musts) if musts else should
    if excluded is not None:
        candidates &= ~excluded
    return candidates, scores


def _single_term(plan: QueryPlan) -> tuple[str, str, float] | None:
    """(field, term, weight) if the plan is one term ranked by score: the most common query
    of a search box, whose matches are exactly the term's live postings."""
    if plan.match_all or plan.match_none or plan.also or plan.search_after is not None or len(plan.clauses) != 1:
        return None
    if plan.sort and [list(key) for key in plan.sort] != DEFAULT_SORT:
        return None
    clause = plan.clauses[0]
    if clause.occur not in (SHOULD, MUST) or not clause.single_term:
        return None
    part = clause.parts[0]
    ((term, weight),) = part.terms
    return part.field, term, weight


def _execute_single_term(shard: ShardIndex, plan: QueryPlan, single: tuple, n: int, k: int,
                         also_numbers: np.ndarray | None = None) -> dict:
    """A one-term plan over the term's postings only: no array of the shard's size (a score
    per document, a mask, a scan of it for the matches), which at 500k documents a shard
    cost more than the term's own scoring. Same matches, same floats (a posting's score is
    the same expression on the same values) and the same ranking as the general path."""
    field, term, weight = single
    numbers, tf, dl = _postings_below(shard, field, term, n)
    keep = shard.stats.live_mask(n)[numbers]
    if plan.filter:
        keep &= filters.evaluate(plan.filter, shard, n)[numbers]
    numbers = numbers[keep]
    scores = Bm25Weight(weight, plan.avgdl[field]).score(tf[keep], dl[keep]) if k > 0 and len(numbers) else None
    return _ranked_by_score(shard, plan, numbers, scores, n, k, also_numbers)


def _conjunctive_terms(plan: QueryPlan) -> list[tuple[str, str, float]] | None:
    """(field, term, weight) per clause, in clause order, if the plan is an AND of single
    terms ranked by score (`operator: and`, a search box's "all of these words")."""
    if plan.match_all or plan.match_none or plan.also or plan.search_after is not None or len(plan.clauses) < 2:
        return None
    if plan.sort and [list(key) for key in plan.sort] != DEFAULT_SORT:
        return None
    if not all(c.occur == MUST and c.single_term for c in plan.clauses):
        return None
    terms = []
    for clause in plan.clauses:
        part = clause.parts[0]
        ((term, weight),) = part.terms
        terms.append((part.field, term, weight))
    return terms


def _execute_conjunction(shard: ShardIndex, plan: QueryPlan, terms: list, n: int, k: int,
                         also_numbers: np.ndarray | None = None) -> dict | None:
    """An AND of terms over the intersection of their lists: the shortest list's documents,
    looked up in each other list by binary search (numbers ascend), so the work follows the
    shortest list, not the sum of them, and no array of the shard's size is made (the general
    path scores every list whole and counts clauses in arrays of the shard's size). Same
    matches, and the same floats summed in the same clause order, as the general path.
    None when even the shortest list holds a large share of the shard: then a binary search
    per document costs more than the general path's passes (`CONJUNCTION_MAX_SHARE`)."""
    lists = [_postings_below(shard, field, term, n) for field, term, _ in terms]
    shortest = min(range(len(lists)), key=lambda i: len(lists[i][0]))
    numbers = lists[shortest][0]
    if len(numbers) > CONJUNCTION_MAX_SHARE * n:
        return None
    # where each list holds each remaining document, kept as the documents are narrowed
    at: list = [None] * len(lists)
    at[shortest] = np.arange(len(numbers))
    for i, (held, _, _) in enumerate(lists):
        if i == shortest:
            continue
        if not len(numbers) or not len(held):
            numbers = numbers[:0]
            at = [np.zeros(0, dtype=np.int64)] * len(lists)
            break
        found = np.minimum(np.searchsorted(held, numbers), len(held) - 1)
        keep = held[found] == numbers
        numbers, at[i] = numbers[keep], found[keep]
        at = [a if a is None or j == i else a[keep] for j, a in enumerate(at)]
    keep = shard.stats.live_mask(n)[numbers]
    if plan.filter:
        keep &= filters.evaluate(plan.filter, shard, n)[numbers]
    numbers = numbers[keep]
    if k <= 0 or not len(numbers):
        return _ranked_by_score(shard, plan, numbers, None, n, k, also_numbers)
    scores = np.zeros(len(numbers))
    for (field, _, weight), (_, tf, dl), where in zip(terms, lists, at):
        where = where[keep]
        scores += Bm25Weight(weight, plan.avgdl[field]).score(tf[where], dl[where])
    return _ranked_by_score(shard, plan, numbers, scores, n, k, also_numbers)


def _ranked_by_score(shard: ShardIndex, plan: QueryPlan, numbers: np.ndarray, scores: np.ndarray | None,
                     n: int, k: int, also_numbers: np.ndarray | None = None) -> dict:
    """The query phase's answer from the live, filtered matches (`numbers`, ascending) and
    their scores: the total, facets over them, and the k best by score, then id. With
    `also_numbers` (a hybrid round's kNN hits; no facets then), those of them that are live
    and pass the filter count too, and the ones no clause matched are listed ("also_only"),
    as the general path does."""
    out = {"total": int(len(numbers)), "hits": [], "facets": {}}
    if also_numbers is not None:
        only = _also_only(shard, plan, numbers, also_numbers, n)
        out["total"] += len(only)
        doc_ids = shard.stats.doc_ids
        out["also_only"] = [doc_ids[i] for i in only.tolist() if doc_ids[i] is not None]
    if plan.facets:
        counted = np.zeros(n, dtype=bool)
        counted[numbers] = True
        out["facets"] = facets.shard_partials(plan.facets, shard, counted)
    if k <= 0 or scores is None or not len(numbers):
        return out
    doc_ids = shard.stats.doc_ids
    hits, hit_numbers = [], []
    for number, (key,) in _top(numbers, [-scores], doc_ids, k):
        doc_id = doc_ids[number]
        if doc_id is None:  # removed by an apply on another thread since the mask was read
            continue
        hit_numbers.append(number)
        hits.append([float(-key), doc_id, [float(-key)]])
    out["hits"] = hits
    if plan.explain:
        explained = explain_hits(shard, plan, hit_numbers, [h[0] for h in hits])
        out["explanations"] = {h[1]: e for h, e in zip(hits, explained)}
    return out


def _live_hits(shard: ShardIndex, plan: QueryPlan, also_numbers: np.ndarray, n: int) -> np.ndarray:
    """A hybrid round's kNN hits (document numbers) below n that are live and pass the
    filter, ascending and once each (the hits are at most k: no mask of the shard's size)."""
    also = np.unique(also_numbers[also_numbers < n])
    if len(also):
        keep = shard.stats.live_mask(n)[also]
        if plan.filter:
            keep &= filters.evaluate(plan.filter, shard, n)[also]
        also = also[keep]
    return also


def _also_only(shard: ShardIndex, plan: QueryPlan, numbers: np.ndarray, also_numbers: np.ndarray,
               n: int) -> np.ndarray:
    """The live, filtered kNN hits that are not among the matches (`numbers`, ascending): the
    general path's `extra & ~candidates`."""
    also = _live_hits(shard, plan, also_numbers, n)
    if len(numbers) and len(also):
        at = np.minimum(np.searchsorted(numbers, also), len(numbers) - 1)
        also = also[numbers[at] != also]
    return also


def _prunable_terms(plan: QueryPlan, k: int) -> list[tuple[str, str, float]] | None:
    """(field, term, weight) per clause, in clause order, if the plan can be pruned: ranked by
    score alone (no cursor), two or more clauses, each a single term that may match (SHOULD)."""
    if k <= 0 or plan.search_after is not None:
        return None
    if plan.sort and [list(key) for key in plan.sort] != DEFAULT_SORT:
        return None
    clauses = plan.clauses
    if len(clauses) < 2 or not all(c.occur == SHOULD and c.single_term for c in clauses):
        return None
    terms = []
    for clause in clauses:
        part = clause.parts[0]
        field, ((term, weight),) = part.field, part.terms
        if not weight > 0:  # the bounds assume contributions only add
            return None
        terms.append((field, term, weight))
    return terms


def _match_pruned(shard: ShardIndex, terms: list, avgdl: dict[str, float], n: int, k: int,
                  eligible: np.ndarray):
    """(candidates mask, scores, numbers that can make the top k) -- see the module docstring.
    `scores` is exact at those numbers only (elsewhere it may hold partial sums)."""
    lists, bounds, matched, postings = [], [], np.zeros(n, dtype=bool), 0
    for field, term, weight in terms:
        held = shard.posting_arrays(field, term)
        numbers, tf, dl = _below(held, n)
        matched[numbers] = True
        bm25 = Bm25Weight(weight, avgdl[field])
        lists.append((bm25.scorer(), numbers, tf, dl, bm25))
        postings += len(numbers)
        # The most the list can add to one document: tf/(tf + nb + ns*dl) grows with tf and
        # falls with dl. The whole list's extremes, taken when it was read (a list cut at n
        # only holds fewer postings: its bound can only be lower, so this one still holds).
        bounds.append(bm25.max_score(held.max_tf, held.min_dl) * (1 + _SLACK) if len(numbers) else 0.0)
    candidates = matched & eligible
    if postings < PRUNE_MIN_POSTINGS:
        return candidates, _clause_order_scores(lists, n), None

    scores = partial = np.zeros(n)  # partial sums first; exact values are written over them at the end
    floor = 0.0  # a k-th best score among eligible documents, partial or exact: <= the final k-th
    left = sorted(range(len(lists)), key=lambda i: bounds[i])  # not scored yet, highest bound last
    while left:
        if floor > 0 and sum(bounds[i] for i in left) < floor * (1 - _SLACK):
            break  # documents only in the lists left cannot reach the top k
        score, numbers, tf, dl, _ = lists[left.pop()]
        if len(numbers):
            partial[numbers] += score(tf, dl)
            # a floor from an even sample of the list (any eligible documents' partial scores
            # bound the k-th best from below): a partition of at most ~4k values, not of P
            sample = numbers[::max(1, len(numbers) // _FLOOR_SAMPLE)]
            floor = max(floor, _kth_largest(partial[sample[eligible[sample]]], k))
    if floor <= 0:  # fewer than k eligible documents in any one list: nothing to prune by
        return candidates, _clause_order_scores(lists, n), None
    rest = sum(bounds[i] for i in left)
    # One comparison over the shard, not an addition, a comparison and a mask: few numbers
    # pass, and only those are checked against the candidates (on synthetic arrays of 511k
    # documents with ~350 passing: 0.24 -> 0.12 ms). Those in no scored list have partial 0 and rest < floor.
    top = np.flatnonzero(partial >= floor * (1 - _SLACK) - rest)
    top = top[candidates[top]]
    for _ in range(2):
        # Many documents may still reach the floor (lists of similar bounds): score the most
        # promising exactly, whose k-th best is a higher floor, and keep those that reach it.
        if not left or len(top) <= 4 * k + 64:
            break
        upper = partial[top] + rest
        promising = top[np.argpartition(-upper, 4 * k + 63)[:4 * k + 64]]
        floor = max(floor, _kth_largest(_exact_scores(lists, promising), k))
        top = top[upper >= floor * (1 - _SLACK)]
    if left and len(top) * len(lists) * 4 > sum(len(lists[i][2]) for i in left):
        # Looking the survivors up would cost more than scoring the lists left: score them.
        for i in left:
            score, numbers, tf, dl, _ = lists[i]
            partial[numbers] += score(tf, dl)
        matches = np.flatnonzero(candidates)
        floor = max(floor, _kth_largest(partial[matches], k))
        top = matches[partial[matches] >= floor * (1 - _SLACK)]
    # Exact scores of those, from zero, in clause order: the exhaustive path's float additions.
    scores[top] = _exact_scores(lists, top)
    return candidates, scores, top


def _kth_largest(values: np.ndarray, k: int) -> float:
    """The k-th largest value, or 0.0 when there are fewer than k."""
    if len(values) < k:
        return 0.0
    return float(np.partition(values, len(values) - k)[len(values) - k])


def _clause_order_scores(lists: list, n: int) -> np.ndarray:
    scores = np.zeros(n)
    for score, numbers, tf, dl, _ in lists:
        scores[numbers] += score(tf, dl)
    return scores


def _exact_scores(lists: list, numbers: np.ndarray) -> np.ndarray:
    """Scores of these documents, summed from zero list by list in clause order, as the
    exhaustive path sums them; each list's numbers ascend, so a binary search finds its own."""
    exact = np.zeros(len(numbers))
    if len(numbers) == 0:
        return exact
    for score, held_numbers, tf, dl, _ in lists:
        if len(held_numbers) == 0:
            continue
        at = np.minimum(np.searchsorted(held_numbers, numbers), len(held_numbers) - 1)
        held = held_numbers[at] == numbers
        j = at[held]
        exact[held] += score(tf[j], dl[j])
    return exact


def _add_term(shard: ShardIndex, part: TermPart, avgdl: dict[str, float], n: int,
              scores: np.ndarray, matched: np.ndarray) -> None:
    """One term's BM25 contributions added into `scores`, its documents set in `matched`."""
    field, ((term, weight),) = part.field, part.terms
    numbers, tf, dl = _postings_below(shard, field, term, n)
    if len(numbers):
        matched[numbers] = True
        # a posting list holds each document once: a plain scatter-add is exact
        scores[numbers] += Bm25Weight(weight, avgdl[field]).score(tf, dl)


def _postings_below(shard: ShardIndex, field: str, term: str, n: int):
    """The term's (numbers, tf, dl) without documents numbered after this query started."""
    return _below(shard.posting_arrays(field, term), n)


def _below(arrays, n: int):
    """A list's (numbers, tf, dl) without documents numbered from n on."""
    numbers, tf, dl = arrays
    if len(numbers) and numbers[-1] >= n:  # numbers ascend: only the newest can be too new
        keep = numbers < n
        numbers, tf, dl = numbers[keep], tf[keep], dl[keep]
    return numbers, tf, dl


def _sort_keys(shard: ShardIndex, sort: list, numbers: np.ndarray, scores: np.ndarray, n: int):
    """Per sort key, float64 values over the candidates where smaller ranks first
    (descending keys negated; a missing value is +inf, last either way), and the
    doc-values column of each key (None for _score)."""
    keys, columns = [], []
    for field, order in sort:
        if field == SCORE:
            values, column = scores[numbers], None
        else:
            column = shard.values.column(field)
            if column is None:
                values = np.full(len(numbers), np.nan)
            else:
                values = column.per_doc(n, take_max=order == DESC)[numbers]
        values = -values if order == DESC else values.copy()
        values[np.isnan(values)] = np.inf
        keys.append(values)
        columns.append(column)
    return keys, columns


def _after_mask(shard: ShardIndex, sort: list, keys: list, columns: list, numbers: np.ndarray,
                after: list) -> np.ndarray:
    """Candidates strictly after the cursor (key values, then id) in the total order. The
    cursor's values are put on the scale of the columns the keys were read from (an apply
    may replace a column meanwhile: doc_values.DocValues.compact)."""
    values, after_id = after
    greater = np.zeros(len(numbers), dtype=bool)
    equal = np.ones(len(numbers), dtype=bool)
    for (field, order), key, column, value in zip(sort, keys, columns, values):
        if value is None:
            bound = np.inf
        else:
            if column is None:
                bound = float(value)
            else:
                bound = column.key_of(value)
            bound = -bound if order == DESC else bound
        greater |= equal & (key > bound)
        equal &= key == bound
    if after_id is not None:
        doc_ids = shard.stats.doc_ids
        for i in np.flatnonzero(equal).tolist():
            doc_id = doc_ids[numbers[i]]
            greater[i] = doc_id is not None and doc_id > after_id
    return greater


def _top(numbers: np.ndarray, keys: list, doc_ids: list, k: int) -> list[tuple[int, tuple]]:
    """The k best (number, key values) by keys, then id ascending."""
    if len(numbers) > k:
        primary = keys[0]
        kth = _kth_smallest(primary, k)
        keep = primary <= kth  # everything tied with the k-th stays: ties break on later keys, then id
        numbers, keys = numbers[keep], [a[keep] for a in keys]
    if len(numbers) > 4 * k + 64:
        if len(keys) == 1:
            ahead = np.flatnonzero(keys[0] < kth)  # fewer than k: the rest of the page ties with the k-th
            tied = np.flatnonzero(keys[0] == kth)
        else:
            order = np.lexsort(keys[::-1])
            stacked = np.stack(keys)[:, order]
            at = np.flatnonzero((stacked == stacked[:, k - 1][:, None]).all(axis=0))  # contiguous
            ahead, tied = order[:int(at[0])], order[int(at[0]):int(at[-1]) + 1]
        if len(tied) > 4 * k + 64:
            # Many documents tie with the k-th on every key (a match-all ranked by its constant
            # score, a sort on a field most matches lack): the page takes the smallest ids among
            # them. Compared as plain strings once, not as (keys, id, number) tuples per row.
            ids = [doc_ids[n] or "" for n in numbers[tied].tolist()]
            smallest = set(heapq.nsmallest(k - len(ahead), ids))
            tied = tied[np.fromiter((doc_id in smallest for doc_id in ids), dtype=bool, count=len(ids))]
        keep = np.concatenate((ahead, tied))
        numbers, keys = numbers[keep], [a[keep] for a in keys]
    if len(keys) == 1:
        # one key (by score, or one field): numpy's sort, unless two of the first k + 1 tie
        # (then ids break the tie below): top 100 of 150 rows 0.019 ms, the heap below 0.078
        order = np.argsort(keys[0], kind="stable")[:k + 1]
        ranked = keys[0][order]
        if len(ranked) < 2 or (ranked[1:] != ranked[:-1]).all():
            order = order[:k]
            return list(zip(numbers[order].tolist(), ((v,) for v in ranked[:k].tolist())))
    rows = zip(numbers.tolist(), zip(*[a.tolist() for a in keys]))
    best = heapq.nsmallest(k, ((key, doc_ids[number] or "", number) for number, key in rows))
    return [(number, key) for key, _, number in best]


def _kth_smallest(values: np.ndarray, k: int) -> float:
    """np.partition(values, k - 1)[k - 1], without partitioning every value: the k-th smallest
    of an even sample bounds it from above (at least k values of the whole are at or below
    it), so only the values at or below that bound are partitioned, usually a few hundred.
    (The whole partition was a quarter of a shard's query time at 511k documents under
    py-spy; 300k values: 3.4 -> 0.12 ms.)"""
    if len(values) > 8 * _TOP_SAMPLE and k <= _TOP_SAMPLE // 4:
        sample = values[::len(values) // _TOP_SAMPLE]
        bound = np.partition(sample, k - 1)[k - 1]
        values = values[values <= bound]
    return np.partition(values, k - 1)[k - 1]


def _clause_scores(shard: ShardIndex, clause: PlanClause, avgdl: dict[str, float], n: int):
    """(matched mask, score contribution or None) of one clause over the shard's documents."""
    if clause.kind == RANGE:
        return filters.evaluate(clause.filter, shard, n), None
    matched = np.zeros(n, dtype=bool)
    contrib = np.zeros(n)
    for part in clause.parts:
        field = part.field
        if clause.kind == PHRASE:
            for i, freq, dl in _phrase_matches(shard, field, part.terms, part.offsets):
                if i >= n:  # indexed after this query started
                    continue
                matched[i] = True
                contrib[i] += Bm25Weight(part.weight, avgdl[field]).score(freq, dl)
        else:
            for term, weight in part.terms:
                numbers, tf, dl = _postings_below(shard, field, term, n)
                if len(numbers):
                    matched[numbers] = True
                    contrib[numbers] += Bm25Weight(weight, avgdl[field]).score(tf, dl)
    return matched, contrib


def _phrase_matches(shard: ShardIndex, field: str, terms: list[str], offsets: list[int]):
    """(doc number, phrase frequency, field length) for docs where the terms occur at the offsets."""
    holding = shard.derived_all_fields(terms) if field == ALL_FIELD else None
    if holding is not None:
        # A derived `_all` (index/all_field.py): a phrase matches within one field, as in a
        # stored `_all` (its values were POSITION_GAP apart), so its frequency is the sum of
        # the fields' own. Matching field by field skips merging the fields' position lists
        # (twice the time of a stored `_all`'s phrase at 64k documents when merged).
        freq: dict[int, int] = {}
        for name in holding:
            for docnum, count, _ in _phrase_matches(shard, name, terms, offsets):
                freq[docnum] = freq.get(docnum, 0) + count
        for docnum, count in freq.items():
            yield docnum, count, shard.all_length(docnum)
        return
    # Start from the rarest term to keep the candidate set small.
    lists = sorted(((shard.postings(field, term), offset) for term, offset in zip(terms, offsets)),
                   key=lambda item: len(item[0]))
    base, base_offset = lists[0]
    for docnum, (_, dl, positions) in base.items():
        if not all(docnum in other for other, _ in lists[1:]):
            continue
        starts = {p - base_offset for p in positions}
        for other, offset in lists[1:]:
            starts &= {p - offset for p in other[docnum][2]}
            if not starts:
                break
        if starts:
            yield docnum, len(starts), dl
