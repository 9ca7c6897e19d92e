"""Vector fields, kNN and hybrid search through the coordinator over in-process shards
(no Ray): kNN against brute force, identical answers on 1 and 4 shards, hybrid against an
oracle fusing the engine's own two lists, the union's total and facets, and the vectors'
life in a shard (re-index, delete, reopen, restore from mirrored entries)."""

from __future__ import annotations

import asyncio
import base64

import numpy as np
import orjson
import pytest

from raysearch import schema
from raysearch.analysis.analyzer import Analyzer
from raysearch.errors import InvalidRequest
from raysearch.index import keys as K
from raysearch.index.batch import split_batch
from raysearch.index.shard_index import ShardIndex
from raysearch.ingest import validation
from raysearch.models import IndexSettings, SearchRequest
from raysearch.search.coordinator import IndexTarget, SearchCoordinator, SearchLimits
from raysearch.search.fusion import Fusion, fuse
from raysearch.search.shard_side import LocalShard
from raysearch.storage.kv import MemoryKV

DIMS = 8
WORDS = "red green blue apple banana cherry fast slow river mountain".split()


def _docs(count: int, seed: int = 7) -> list[dict]:
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(count):
        doc = {"id": f"d{i:04}", "body": " ".join(rng.choice(WORDS, size=4)), "kind": ["a", "b", "c"][i % 3]}
        if i % 10 != 9:  # some documents have no vector
            doc["emb"] = rng.normal(size=DIMS).round(4).tolist()
        docs.append(doc)
    return docs


def _settings(similarity: str = "cosine") -> IndexSettings:
    return IndexSettings(fields={"emb": {"type": "vector", "dims": DIMS, "similarity": similarity},
                                 "kind": {"type": "keyword"}})


def _build(docs, shards, similarity="cosine", batches=1):
    settings = _settings(similarity)
    target0 = IndexTarget("t", settings, Analyzer(), [])
    indexes = [ShardIndex(MemoryKV()) for _ in range(shards)]
    step = -(-len(docs) // batches)
    for b in range(batches):
        part_docs = docs[b * step:(b + 1) * step]
        per_shard, _, failed = split_batch(part_docs, [], shards, Analyzer(), target0.types, target0.vectors)
        assert not failed
        for n, part in per_shard.items():
            indexes[n].apply(f"b{b}", part)
    return IndexTarget("t", settings, Analyzer(), [LocalShard(ix, n) for n, ix in enumerate(indexes)]), indexes


def _search(target, **params):
    return asyncio.run(SearchCoordinator(SearchLimits()).search(target, SearchRequest(**params)))


def _brute(docs, query, similarity, k, keep=lambda d: True):
    q = np.asarray(query, dtype=np.float32).astype(np.float64)
    scored = []
    for doc in docs:
        if "emb" not in doc or not keep(doc):
            continue
        v = np.asarray(doc["emb"], dtype=np.float32).astype(np.float64)
        if similarity == "cosine":
            s = (1 + v @ q / (np.linalg.norm(v) * np.linalg.norm(q))) / 2
        elif similarity == "dot_product":
            s = (1 + v @ q) / 2
        else:
            s = 1 / (1 + ((v - q) ** 2).sum())
        scored.append((-s, doc["id"]))
    scored.sort()
    return [(doc_id, -neg) for neg, doc_id in scored[:k]]


@pytest.mark.parametrize("similarity", ["cosine", "dot_product", "l2"])
def test_knn_is_exact_brute_force_and_independent_of_shard_count(similarity):
    docs = _docs(300)
    rng = np.random.default_rng(1)
    answers = {}
    for shards in (1, 4):
        target, _ = _build(docs, shards, similarity, batches=3)
        for i in range(5):
            query = rng.normal(size=DIMS).round(3).tolist() if shards == 1 else answers[(1, i)][0]
            got = _search(target, knn={"field": "emb", "vector": query, "k": 15, "num_candidates": 50}, size=15)
            expected = _brute(docs, query, similarity, 15)
            assert [h["id"] for h in got["hits"]] == [d for d, _ in expected]
            assert [h["score"] for h in got["hits"]] == pytest.approx([s for _, s in expected], rel=1e-5)
            assert got["total"] == 15
            assert "emb" not in got["hits"][0]["document"]  # vectors stay out of hits, as in Elasticsearch 9
            answers[(shards, i)] = (query, got["hits"])
    for i in range(5):
        assert answers[(1, i)][1] == answers[(4, i)][1]


def test_knn_filter_applies_to_candidates_and_k_hits_come_back_when_enough_pass():
    docs = _docs(300)
    target, _ = _build(docs, 4)
    query = [0.5] * DIMS
    got = _search(target, knn={"field": "emb", "vector": query, "k": 20}, filter={"term": {"kind": "b"}}, size=20)
    expected = _brute(docs, query, "cosine", 20, keep=lambda d: d["kind"] == "b")
    assert [h["id"] for h in got["hits"]] == [d for d, _ in expected]
    assert len(got["hits"]) == 20 and all(h["document"]["kind"] == "b" for h in got["hits"])
    # the filter inside knn (Elasticsearch's place) does the same
    inner = _search(target, knn={"field": "emb", "vector": query, "k": 20, "filter": {"term": {"kind": "b"}}}, size=20)
    assert inner["hits"] == got["hits"]


@pytest.mark.parametrize("with_facets", [True, False])  # two rounds (kNN, then text) / one combined round
def test_hybrid_rrf_equals_fusing_the_engines_own_lists_on_1_and_4_shards(with_facets):
    docs = _docs(400)
    query = np.random.default_rng(3).normal(size=DIMS).round(3).tolist()
    asked = {"facets": {"kind": {"terms": {"field": "kind"}}}} if with_facets else {}
    fused_pages = []
    for shards in (1, 4):
        target, _ = _build(docs, shards, batches=2)
        text = _search(target, q="apple river", size=50)
        knn = _search(target, knn={"field": "emb", "vector": query, "k": 50}, size=50)
        oracle = fuse([(h["score"], h["id"]) for h in text["hits"]], [(h["score"], h["id"]) for h in knn["hits"]],
                      Fusion(window=50))
        got = _search(target, q="apple river", knn={"field": "emb", "vector": query, "k": 50},
                      rank={"rrf": {"window": 50}}, size=30, **asked)
        assert [(h["id"], h["score"]) for h in got["hits"]] == [(f.doc_id, f.score) for f in oracle[:30]]
        assert got["hits"][0]["ranks"] == {"text": oracle[0].text_rank, "knn": oracle[0].knn_rank}
        documents = {d["id"]: d for d in docs}
        assert all(h["document"]["body"] == documents[h["id"]]["body"] for h in got["hits"])
        # total (and facets) count the union: every text match plus the kNN hits that do not
        # match; on 4 shards each shard's own top 50 holds hits outside the global top 50
        text_ids = {d["id"] for d in docs if {"apple", "river"} & set(d["body"].split())}
        union = text_ids | {h["id"] for h in knn["hits"]}
        assert got["total"] == len(union)
        if with_facets:
            kinds = {d["id"]: d["kind"] for d in docs}
            facet = {b["key"]: b["count"] for b in got["facets"]["kind"]["buckets"]}
            assert facet == {kind: sum(1 for i in union if kinds[i] == kind) for kind in "abc"}
        fused_pages.append(got["hits"])
        # search_after and from page through the fused list (documents from the fetch phase)
        second = _search(target, q="apple river", knn={"field": "emb", "vector": query, "k": 50},
                         rank={"rrf": {"window": 50}}, size=10, search_after=got["hits"][9]["sort"]
                         if "sort" in got["hits"][9] else [got["hits"][9]["score"], got["hits"][9]["id"]], **asked)
        assert [h["id"] for h in second["hits"]] == [h["id"] for h in got["hits"][10:20]]
        deep = _search(target, q="apple river", knn={"field": "emb", "vector": query, "k": 50},
                       rank={"rrf": {"window": 50}}, size=60, **{"from": 5}, **asked)
        assert [h["id"] for h in deep["hits"]] == [f.doc_id for f in oracle[5:65]]
        assert all(h["document"]["body"] == documents[h["id"]]["body"] for h in deep["hits"])
    assert fused_pages[0] == fused_pages[1]


def test_hybrid_with_one_term_counts_the_union_on_any_shard_count():
    docs = _docs(300)
    query = [0.3, -0.2, 0.1, 0.5, -0.4, 0.2, 0.0, 0.1]
    for shards in (1, 3):
        target, _ = _build(docs, shards)
        got = _search(target, q="cherry", knn={"field": "emb", "vector": query, "k": 20}, size=5)
        knn = {d for d, _ in _brute(docs, query, "cosine", 20)}
        assert got["total"] == len({d["id"] for d in docs if "cherry" in d["body"].split()} | knn)


def test_hybrid_with_only_stop_words_counts_the_knn_hits():
    docs = _docs(200)
    target, _ = _build(docs, 3)
    query = [0.25] * DIMS
    got = _search(target, q="the of", knn={"field": "emb", "vector": query, "k": 12}, size=12)
    expected = _brute(docs, query, "cosine", 12)
    assert [h["id"] for h in got["hits"]] == [d for d, _ in expected]
    assert got["total"] == 12


def test_linear_fusion_normalises_bm25_over_the_window():
    text = [(9.0, "a"), (5.0, "b"), (1.0, "c")]
    knn = [(0.9, "c"), (0.8, "d")]
    fused = {f.doc_id: f.score for f in fuse(text, knn, Fusion("linear", weight=0.25))}
    assert fused == pytest.approx({"a": 0.75, "b": 0.75 * 0.5, "c": 0.25 * 0.9, "d": 0.25 * 0.8})


def test_vectors_follow_reindex_delete_reopen_and_restore():
    docs = _docs(60)
    target, indexes = _build(docs, 1)
    shard = indexes[0]
    changed = [{**docs[0], "emb": [1.0] + [0.0] * (DIMS - 1)}, {k: v for k, v in docs[1].items() if k != "emb"}]
    vectors = target.vectors
    part = split_batch(changed, [docs[2]["id"]], 1, Analyzer(), target.types, vectors)[0][0]
    shard.apply("b-update", part)
    got = _search(target, knn={"field": "emb", "vector": [1.0] + [0.0] * (DIMS - 1), "k": 3})
    assert got["hits"][0]["id"] == docs[0]["id"] and got["hits"][0]["score"] == pytest.approx(1.0)
    ids = {h["id"] for h in _search(target, knn={"field": "emb", "vector": [0.3] * DIMS, "k": 60}, size=60)["hits"]}
    assert docs[1]["id"] not in ids and docs[2]["id"] not in ids  # lost its vector; deleted
    assert shard.kv.get(K.vectors_key(docs[1]["id"])) is None and shard.kv.get(K.vectors_key(docs[2]["id"])) is None
    # GET of a document puts its vector back
    import orjson
    assert orjson.loads(shard.get_document(docs[0]["id"]))["emb"] == [1.0] + [0.0] * (DIMS - 1)
    before = _search(target, knn={"field": "emb", "vector": [0.3] * DIMS, "k": 20}, size=20)
    reopened = ShardIndex(shard.kv)
    restored = ShardIndex(MemoryKV())
    restored.restore(list(shard.data_items()))
    for again in (reopened, restored):
        t = IndexTarget("t", target.settings, Analyzer(), [LocalShard(again, 0)])
        assert _search(t, knn={"field": "emb", "vector": [0.3] * DIMS, "k": 20}, size=20)["hits"] == before["hits"]


@pytest.mark.parametrize("value, problem", [
    ([1.0] * (DIMS - 1), "8 dimensions"), ([1.0] * (DIMS - 1) + ["x"], "expected numbers"),
    ([float("nan")] * DIMS, "finite"), ([0.0] * DIMS, "zero vector"), ({"a": 1}, "list of 8 numbers"),
    ("1,2", "must be base64"), (schema.base64_vector([1.0] * (DIMS - 1)), "holds 28 bytes, not 32"),
    (schema.base64_vector([float("inf")] + [1.0] * (DIMS - 1)), "finite"),
    (schema.base64_vector([0.0] * DIMS), "zero vector"),
])
def test_bad_vectors_are_refused_naming_the_field(value, problem):
    spec = schema.VectorSpec(DIMS, "cosine")
    reason = schema.type_error({"id": "x", "emb": value}, {}, {"emb": spec})
    assert reason and "'emb'" in reason and problem in reason


def test_a_requests_vectors_checked_at_once_equal_checking_each_on_its_own():
    """schema.check_vectors (a field's values as one matrix) against vector_value per
    document: the same reasons for the same documents, the same float32 values, whatever
    bad values sit among good ones (and a whole request of good ones takes the matrix)."""
    spec = {"emb": schema.VectorSpec(DIMS, "cosine"), "raw": schema.VectorSpec(3, "l2")}
    rng = np.random.default_rng(3)
    good = [rng.normal(size=DIMS).tolist() for _ in range(6)]
    bad = [[1.0] * (DIMS - 1), [1.0] * (DIMS - 1) + ["x"], [1.0] * (DIMS - 1) + [True], [float("nan")] * DIMS,
           [0.0] * DIMS, "1,2", [1e39] * DIMS, [2**70] * DIMS, [10**400] + [1.0] * (DIMS - 1), tuple(good[0]),
           np.asarray(good[1], dtype=np.float32), [[1.0]] * DIMS, [1] * DIMS]
    for values in ([*good], [*good[:3], *bad, *good[3:]]):
        docs = [{"id": f"d{i}", "emb": v, "raw": [1, 2.5, -3]} for i, v in enumerate(values)]
        docs.append({"id": "none", "emb": None})
        expected = []
        for doc in docs:
            try:
                expected.append((None, schema.vector_values(doc, spec)))
            except ValueError as exc:
                expected.append((str(exc), None))
        reasons = schema.check_vectors(docs, spec)
        assert reasons == [reason for reason, _ in expected]
        for doc, (reason, vectors) in zip(docs, expected):
            for field, vector in (vectors or {}).items():
                assert doc[field].dtype == np.float32 and np.array_equal(doc[field], vector), (doc["id"], field)
    assert sum(r is not None for r in reasons) == len(bad) - 4  # the tuple, the array, 2**70s and 1s fit


def test_a_vector_may_come_as_base64_big_endian_float32_as_elasticsearch_takes_it():
    """A base64 string of big-endian float32 values (Elasticsearch 9.3's bulk format) reads as
    the same float32 vector as its list of numbers, at intake (check_vectors), in the
    intake log's payload, and in a knn query."""
    from raysearch.index.batch import decode_payload, encode_payload

    spec = {"emb": schema.VectorSpec(DIMS, "cosine")}
    vector = np.random.default_rng(4).normal(size=DIMS).astype(np.float32)
    text = schema.base64_vector(vector)
    assert text == base64.b64encode(vector.astype(">f4").tobytes()).decode()
    docs = [{"id": "list", "emb": vector.tolist()}, {"id": "b64", "emb": text}, {"id": "bad", "emb": text[:-4]}]
    reasons = schema.check_vectors(docs, spec)
    assert reasons[:2] == [None, None] and f"bytes, not {4 * DIMS}" in reasons[2]
    assert np.array_equal(docs[0]["emb"], vector) and np.array_equal(docs[1]["emb"], vector)
    raw = [{"id": "list", "emb": vector.tolist()}, {"id": "b64", "emb": text}]
    decoded, _, _, _ = decode_payload(encode_payload(raw, vectors=spec))
    assert np.array_equal(decoded[0]["emb"], decoded[1]["emb"]) and np.array_equal(decoded[1]["emb"], vector)
    from raysearch.search.knn import parse_knn

    by_list = parse_knn({"field": "emb", "vector": vector.tolist()}, spec, {})
    assert parse_knn({"field": "emb", "vector": text}, spec, {}).vector == by_list.vector


def test_a_vectors_size_counts_as_stored_and_its_numbers_are_left_to_the_vector_check():
    doc = {"id": "a", "title": "x", "emb": [0.1] * DIMS}
    checked, _, reason = validation.validate_document(dict(doc), 10**6, {"emb": None})
    assert reason is None and checked["emb"] == doc["emb"]
    plain = len(orjson.dumps({"id": "a", "title": "x"}))
    assert validation.validate_document(dict(doc), plain + 4 * DIMS, {"emb": None})[2] is None
    too_big = validation.validate_document(dict(doc), plain + 4 * DIMS - 1, {"emb": None})[2]
    assert too_big and "limit" in too_big
    # outside the vector fields, lists of numbers are checked as before (in-cluster callers pass NaN)
    assert "NaN" in validation.validate_document({"id": "b", "other": [float("nan")]}, 10**6, {"emb": None})[2]
    assert validation.validate_document({"id": "c", "emb": [1.0, "x"]}, 10**6, {"emb": None})[2] is None


def test_bad_knn_requests_are_400s_naming_the_problem():
    target, _ = _build(_docs(20), 1)
    for knn, words in [({"field": "body", "vector": [1] * DIMS}, "not a vector field"),
                       ({"field": "emb", "vector": [1] * 3}, "8 dimensions"),
                       ({"field": "emb", "vector": [1] * DIMS, "k": 0}, "k must be"),
                       ({"field": "emb", "vector": [1] * DIMS, "k": 50, "num_candidates": 10}, "at least k"),
                       ({"field": "emb", "vector": [1] * DIMS, "nope": 1}, "unknown key")]:
        with pytest.raises(InvalidRequest, match=words):
            _search(target, knn=knn)
    with pytest.raises(InvalidRequest, match="sort by a field"):
        _search(target, knn={"field": "emb", "vector": [1] * DIMS}, sort=[{"kind": "asc"}])
    with pytest.raises(InvalidRequest, match="embedder"):
        _search(target, q="apple", hybrid=True)


def test_vector_settings_are_checked():
    with pytest.raises(ValueError, match="dims"):
        IndexSettings(fields={"e": {"type": "vector"}})
    with pytest.raises(ValueError, match="for vector fields"):
        IndexSettings(fields={"e": {"type": "keyword", "dims": 3}})
    with pytest.raises(ValueError, match="256"):
        IndexSettings(fields={"e": {"type": "vector", "dims": 3}}, embedder={"fields": ["t"], "target": "e"})


# ------------------------------------------------------------------ ANN (index/ann.py)
def _ann_shard(count=3000, dims=32):
    rng = np.random.default_rng(11)
    docs = [{"id": f"v{i:05}", "emb": rng.normal(size=dims).round(4).tolist()} for i in range(count)]
    vectors = {"emb": schema.VectorSpec(dims, "cosine")}
    shard = ShardIndex(MemoryKV())
    for b in range(0, count, 500):
        shard.apply(f"b{b}", split_batch(docs[b:b + 500], [], 1, Analyzer(), {}, vectors)[0][0])
    while shard.extend_ann("emb", "cosine", min_vectors=100, budget=1000):
        pass
    return shard, docs, vectors, rng


def _knn(shard, vector, k=10, candidates=100, exact_below=100):
    from raysearch.search.knn import KnnQuery, shard_knn

    query = KnnQuery("emb", np.asarray(vector, dtype="<f4").tobytes(), k, candidates, "cosine")
    return shard_knn(shard, query, exact_below=exact_below)


def test_ann_candidates_rescored_exactly_recall_and_exactness_at_full_candidates():
    shard, docs, _, rng = _ann_shard()
    column = shard.vectors.column("emb")
    assert column.ann is not None and len(column.ann) == len(docs) and column.ann.covered == len(docs)
    found = total = 0
    for _ in range(20):
        q = rng.normal(size=32)
        exact = _knn(shard, q, exact_below=10**9)
        approx = _knn(shard, q)
        assert all(s == pytest.approx(dict((i, e) for e, i in exact).get(i, s)) for s, i in approx)  # same scores
        found += len({i for _, i in approx} & {i for _, i in exact})
        total += len(exact)
        assert _knn(shard, q, candidates=len(docs)) == exact  # every candidate: the exact answer
    assert found / total >= 0.9, found / total


def test_ann_misses_nothing_new_or_returns_anything_removed():
    shard, docs, vectors, rng = _ann_shard()
    q = rng.normal(size=32).round(4).tolist()
    shard.apply("new", split_batch([{"id": "newest", "emb": q}], [], 1, Analyzer(), {}, vectors)[0][0])
    assert _knn(shard, q)[0][1] == "newest"  # beyond the graph: searched exactly
    top = [i for _, i in _knn(shard, q, k=5)]
    shard.apply("del", split_batch([], top[:3], 1, Analyzer(), {}, vectors)[0][0])
    assert not set(top[:3]) & {i for _, i in _knn(shard, q, k=20)}
    # a third of the graph removed: it is built again without them, to the side, then swapped in
    gone = [d["id"] for d in docs[:1200]]
    shard.apply("del2", split_batch([], gone, 1, Analyzer(), {}, vectors)[0][0])
    old = shard.vectors.column("emb").ann
    while shard.extend_ann("emb", "cosine", min_vectors=100, budget=1000):
        pass
    new = shard.vectors.column("emb").ann
    assert new is not old and len(new) == shard.stats.docs == len(old) - len(set(gone) | set(top[:3])) + 1


def test_ann_saved_and_loaded_only_by_its_own_store(tmp_path):
    from raysearch.index.ann import AnnIndex

    shard, _, _, rng = _ann_shard(count=600)
    ann = shard.vectors.column("emb").ann
    ann.save(str(tmp_path), "emb", shard.store_id)
    loaded = AnnIndex.load_all(str(tmp_path), shard.store_id)["emb"]
    q = rng.normal(size=32).astype(np.float32)
    assert (loaded.covered, loaded.keys, len(loaded)) == (ann.covered, ann.keys, len(ann))
    assert list(loaded.search(q, 10)) == list(ann.search(q, 10))
    assert AnnIndex.load_all(str(tmp_path), "another-store") == {}
    assert ShardIndex(shard.kv).store_id == shard.store_id  # the id lives in the store


# ------------------------------------------------------------ RM3 (search/expansion.py)
def test_rm3_mixes_the_query_with_its_feedback_model():
    from raysearch.search.expansion import Rm3, expand
    from raysearch.search.plan import AnalyzedClause
    from raysearch.search.query import MUST_NOT, SHOULD, TERM

    analyzer = Analyzer()
    fields = [("_all", 1.0)]
    clauses = [AnalyzedClause(SHOULD, TERM, fields, ["river"]), AnalyzedClause(MUST_NOT, TERM, fields, ["slow"])]
    feedback = [(3.0, {"id": "a", "body": "river bank river boat"}), (1.0, {"id": "b", "body": "river mountain"})]
    out = expand(clauses, feedback, fields, analyzer, Rm3(docs=2, terms=2, weight=0.5))
    weights = {c.terms[0]: c.fields[0][1] for c in out if c.occur == SHOULD}
    # RM1: river .75*2/4 + .25*1/2 = .5, bank .75*1/4 = .1875 (boat ties bank, loses on the name)
    assert weights == pytest.approx({"river": 0.5 + 0.5 * 0.5 / 0.6875, "bank": 0.5 * 0.1875 / 0.6875})
    assert any(c.occur == MUST_NOT and c.terms == ["slow"] for c in out)  # exclusions stay


def test_search_with_rm3_expands_and_bad_options_are_400s():
    docs = _docs(200)
    target, _ = _build(docs, 2)
    plain = _search(target, q="apple", size=50)
    expanded = _search(target, q="apple", expand={"rm3": {"docs": 5, "terms": 5, "weight": 0.3}}, size=50)
    assert expanded["total"] >= plain["total"]  # expansion terms match more documents
    assert [h["id"] for h in expanded["hits"]] != [h["id"] for h in plain["hits"]]
    for bad, words in [({"rm3": {"docs": 0}}, "docs"), ({"rm3": {"weight": 2}}, "weight"), ({"bo1": {}}, "rm3")]:
        with pytest.raises(InvalidRequest, match=words):
            _search(target, q="apple", expand=bad)


def test_intake_payload_carries_vectors_as_float32_and_reads_old_payloads():
    from raysearch.index.batch import decode_payload, encode_payload

    vectors = {"emb": schema.VectorSpec(3, "cosine")}
    docs = [{"id": "a", "emb": [1.5, -2, 3e-3], "t": "x"}, {"id": "b", "t": "y"}]
    raw = encode_payload(docs, ["gone"], {"k": "keyword"}, vectors)
    back, deletes, types, specs = decode_payload(raw)
    assert deletes == ["gone"] and types == {"k": "keyword"} and specs == vectors
    assert back[0]["emb"].dtype == np.float32 and back[0]["emb"].tolist() == pytest.approx([1.5, -2, 3e-3])
    assert "emb" not in back[1] and docs[0]["emb"] == [1.5, -2, 3e-3]  # the caller's documents untouched
    assert len(raw) < len(encode_payload(docs, ["gone"], {"k": "keyword"})) + 60
    # a payload written before vectors existed (plain JSON) still reads
    assert decode_payload(b'{"docs": [{"id": "o"}], "deletes": [], "types": {"k": "keyword"}}')[:3] == \
        ([{"id": "o"}], [], {"k": "keyword"})


def test_updated_vectors_reuse_rows_and_answers_equal_a_fresh_index(monkeypatch):
    """Months of updates must not grow a vector column by a row per removed version: a
    removed document's row is reused by a later one (after REUSE_AFTER_S, so a search that
    began before the removal still reads the old vector), and kNN answers, exact and through
    the ANN graph, stay those of a fresh index of the final documents."""
    from raysearch.index import vectors as vector_columns

    shard, docs, vectors, rng = _ann_shard(count=1000)
    column = shard.vectors.column("emb")
    assert column.rows_held() == 1000
    # at first, within REUSE_AFTER_S: removed rows are not handed out again
    again = [{**d, "emb": rng.normal(size=32).round(4).tolist()} for d in docs[:100]]
    shard.apply("quick", split_batch(again, [], 1, Analyzer(), {}, vectors)[0][0])
    assert column.rows_held() == 1100 and column.count() == 1000
    monkeypatch.setattr(vector_columns, "REUSE_AFTER_S", 0.0)
    final = {d["id"]: d for d in docs} | {d["id"]: d for d in again}
    for r in range(20):
        picked = rng.choice(1000, size=100, replace=False)
        changed = [{**docs[i], "emb": rng.normal(size=32).round(4).tolist()} for i in picked]
        final.update({d["id"]: d for d in changed})
        shard.apply(f"update-{r}", split_batch(changed, [], 1, Analyzer(), {}, vectors)[0][0])
    gone = [docs[i]["id"] for i in rng.choice(1000, size=50, replace=False)]
    shard.apply("delete", split_batch([], gone, 1, Analyzer(), {}, vectors)[0][0])
    for doc_id in gone:
        final.pop(doc_id)
    while shard.extend_ann("emb", "cosine", min_vectors=100, budget=1000):
        pass
    # 3,100 versions written: rows held stay at the live vectors plus what waited for reuse
    assert column.count() == len(final) == 950
    assert column.rows_held() <= 1100 + 100, column.rows_held()
    fresh = ShardIndex(MemoryKV())
    fresh.apply("all", split_batch(list(final.values()), [], 1, Analyzer(), {}, vectors)[0][0])
    while fresh.extend_ann("emb", "cosine", min_vectors=100, budget=1000):
        pass
    for _ in range(10):
        q = rng.normal(size=32)
        assert _knn(shard, q, exact_below=10**9) == _knn(fresh, q, exact_below=10**9)  # exact
        assert _knn(shard, q, candidates=len(final)) == _knn(fresh, q, candidates=len(final))
        found = {i for _, i in _knn(shard, q)}  # through the graph: nothing removed comes back
        assert found <= set(final) and len(found & {i for _, i in _knn(fresh, q, exact_below=10**9)}) >= 7
