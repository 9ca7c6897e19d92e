"""Fuzzy terms, typo tolerance and the last word as a prefix (search/fuzzy.py), through the
coordinator over in-process shards (no Ray), against an oracle that expands terms by brute
force over the whole vocabulary with its own edit distance."""

from __future__ import annotations

import asyncio

import pytest

from raysearch.analysis.analyzer import ALL_FIELD, Analyzer
from raysearch.index.batch import split_batch
from raysearch.index.shard_index import ShardIndex
from raysearch.models import IndexSettings, SearchRequest
from raysearch.search.coordinator import IndexTarget, SearchCoordinator, SearchLimits
from raysearch.search.fuzzy import auto_edits
from raysearch.search.shard_side import LocalShard
from raysearch.storage.kv import MemoryKV
from tests.conftest import debian_docs

DOCS = debian_docs(0, 600)


def _osa(a: str, b: str) -> int:
    """Optimal string alignment distance, the textbook dynamic programme (the oracle's own)."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def _target(shards: int, settings: dict | None = None):
    analyzer = Analyzer()
    stores = [ShardIndex(MemoryKV()) for _ in range(shards)]
    for n, part in split_batch(DOCS, [], shards, analyzer)[0].items():
        stores[n].apply("b", part)
    return (IndexTarget("t", IndexSettings(**(settings or {})), analyzer,
                        [LocalShard(s, n) for n, s in enumerate(stores)]), stores)


def _search(target, **params):
    return asyncio.run(SearchCoordinator(SearchLimits()).search(target, SearchRequest(**params)))


def _oracle_matches(stores, term: str, edits: int, limit: int = 50) -> set[str]:
    vocabulary = {t for s in stores for t in s.terms(ALL_FIELD)}
    near = sorted((_osa(term, t), t) for t in vocabulary if abs(len(t) - len(term)) <= edits)
    expanded = {t for d, t in near if d <= edits}
    expanded = {t for d, t in sorted((d, t) for d, t in near if t in expanded)[:limit]}
    analyzer = Analyzer()
    return {d["id"] for d in DOCS if expanded & {t for f, v in d.items() if f != "id" and isinstance(v, str)
                                                   for t in analyzer.terms(v)}}


@pytest.mark.parametrize("query, term, edits", [("pythn~", "pythn", 1), ("librari~2", "librari", 2),
                                                 ("kernal~1", "kernal", 1), ("gnome~0", "gnome", 0)])
def test_fuzzy_totals_equal_brute_force_and_do_not_depend_on_shards(query, term, edits):
    answers = []
    for shards in (1, 3):
        target, stores = _target(shards)
        got = _search(target, q=query, size=600)
        assert got["total"] == len(_oracle_matches(stores, term, edits)) > 0
        assert {h["id"] for h in got["hits"]} == _oracle_matches(stores, term, edits)
        answers.append([(h["id"], h["score"]) for h in got["hits"]])
    assert answers[0] == answers[1]


def test_exact_matches_rank_above_fuzzy_ones_and_typo_tolerance_is_a_setting():
    target, stores = _target(2, {"typo_tolerance": True})
    plain, _ = _target(2)
    assert _search(plain, q="pythn")["total"] == 0  # as a new user found it: no match without tolerance
    got = _search(target, q="pythn", size=50)
    assert got["total"] > 0 and all("python" in str(h["document"]).lower() for h in got["hits"][:5])
    exact_docs = {h["id"] for h in _search(plain, q="python", size=600)["hits"]}
    fuzzy = _search(target, q="python", size=600)["hits"]
    assert exact_docs < {h["id"] for h in fuzzy} and all(h["id"] in exact_docs for h in fuzzy[:10])
    # alike but for the misspelling: the exact match ranks first, in either order of ids
    analyzer = Analyzer()
    for a, b in (("python", "pythom"), ("pythom", "python")):
        store = ShardIndex(MemoryKV())
        store.apply("b", split_batch([{"id": "1", "body": f"{a} tools"}, {"id": "2", "body": f"{b} tools"}],
                                     [], 1, analyzer)[0][0])
        small = IndexTarget("s", IndexSettings(typo_tolerance=True), analyzer, [LocalShard(store, 0)])
        hits = _search(small, q="python")["hits"]
        assert [h["document"]["body"] for h in hits] == ["python tools", "pythom tools"]
        assert hits[0]["score"] > hits[1]["score"]
    assert auto_edits("ab") == 0 and auto_edits("abcde") == 1 and auto_edits("abcdef") == 2


def test_the_last_word_as_a_prefix_while_typing():
    target, _ = _target(2)
    typed = _search(target, q="network pyth", prefix_last=True, size=100)
    assert typed["hits"] == _search(target, q="network pyth*", size=100)["hits"] and typed["total"] > 0
    assert _search(target, q="network pyth ", prefix_last=True)["total"] == _search(target, q="network pyth")["total"]
    # a word typed in full still matches its stem (stored "librari", typed "library")
    full = {h["id"] for h in _search(target, q="library", size=600)["hits"]}
    typed = {h["id"] for h in _search(target, q="library", prefix_last=True, size=600)["hits"]}
    assert full and full <= typed
    # a one-letter prefix matching more terms than the bound is cut, not refused
    assert _search(target, q="s", prefix_last=True)["total"] > 0
