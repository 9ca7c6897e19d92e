"""ShardIndex on the in-memory KV (unit test: no Ray, no RocksDB)."""

import pytest

from raysearch.analysis.analyzer import Analyzer
from raysearch.index import keys as K
from raysearch.index.batch import ShardBatch, split_batch
from raysearch.index.shard_index import ShardIndex, posting_lists
from raysearch.search.executor import execute
from raysearch.search.plan import GlobalStats, QueryPlan, analyze_clauses, build_plan, prefix_pairs, stats_request
from raysearch.search.query import parse_query
from raysearch.storage.kv import MemoryKV


def _docs(docs):
    per_shard, _, _ = split_batch(docs, [], 1, Analyzer())
    return per_shard[0]


def _search(shard, q):
    clauses = analyze_clauses(parse_query(q, lambda f: f in {"title", "body"}), Analyzer(), [("_all", 1.0)])
    req = stats_request(clauses)
    part = {"fields": shard.field_stats(req.fields), "pairs": req.pairs, "doc_freqs": shard.doc_freqs(req.pairs),
            "prefixes": req.prefixes, "expansions": [shard.expand_prefix(f, p, 10) for f, p in req.prefixes]}
    stats = GlobalStats.merge([part], 10)
    extra = prefix_pairs(stats)
    prefix_dfs = dict(zip(extra, shard.doc_freqs(extra)))
    result = execute(shard, build_plan(clauses, stats, prefix_dfs), 10)
    return result["total"], [(score, doc_id) for score, doc_id, _ in result["hits"]]


def _drain_all(shard):
    """Every change-log entry, drained as persistence does (what MongoDB would mirror)."""
    mirrored = []
    while True:
        entries, log = shard.collect_changes(limit=1)
        if not log:
            break
        mirrored.extend(entries)
        shard.ack_changes(log)
    return mirrored


def test_apply_is_idempotent_and_reindex_replaces(no_ray):
    shard = ShardIndex(MemoryKV())
    op1 = shard.apply("b1", _docs([{"id": "a", "title": "red apple"}, {"id": "b", "title": "green apple"}]))
    assert shard.apply("b1", _docs([{"id": "a", "title": "ignored"}])) == op1
    assert shard.doc_count() == 2
    shard.apply("b2", _docs([{"id": "a", "title": "blue sky"}]))
    assert shard.doc_count() == 2
    assert _search(shard, "red")[0] == 0
    assert _search(shard, "blue")[1][0][1] == "a"
    assert shard.doc_freqs([("_all", "appl")]) == [1]
    shard.apply("b3", ShardBatch(deletes=["a", "b", "missing"]))
    assert shard.doc_count() == 0 and _search(shard, "apple")[0] == 0
    # the dead postings wait for a purge, one batch per later apply
    # (F: the text fields a derived `_all` is made of)
    assert {k[:1] for k, _ in shard.data_items()} == {b"A", b"B", b"F", b"L", b"P"}
    shard.apply("b4", ShardBatch(deletes=["missing"]))
    shard.apply("b5", ShardBatch(deletes=["missing"]))
    # only the applied-batch markers, the batch bases and the text fields are left: no
    # posting, no document
    assert {k[:1] for k, _ in shard.data_items()} == {b"A", b"B", b"F"}


def test_change_log_drain_and_watermark(no_ray):
    shard = ShardIndex(MemoryKV())
    shard.apply("b1", _docs([{"id": "a", "title": "one"}]))
    entries, log = shard.collect_changes(limit=3)  # whole opstamps: all of op 1
    assert len(log) == 1 and len(entries) > 3 and shard.persisted_upto() == 0
    shard.apply("b2", _docs([{"id": "b", "title": "two"}]))
    shard.ack_changes(log)
    assert shard.persisted_upto() == 1  # op 2 still pending
    assert shard.pending_changes() > 0
    entries, log = shard.collect_changes(limit=10_000)
    shard.ack_changes(log)
    assert shard.persisted_upto() == 2 and shard.pending_changes() == 0


def test_restore_from_entries_reproduces_the_store(no_ray):
    shard = ShardIndex(MemoryKV())
    shard.apply("b1", _docs([{"id": "a", "title": "one two"}, {"id": "b", "title": "two"}]))
    shard.apply("b2", ShardBatch(deletes=["a"]))
    mirrored = _drain_all(shard)
    copy = ShardIndex(MemoryKV())
    copy.restore(mirrored)
    assert list(copy.data_items()) == list(shard.data_items())
    assert copy.last_opstamp == 2


def test_query_operators(no_ray):
    shard = ShardIndex(MemoryKV())
    shard.apply("b", _docs([
        {"id": "1", "title": "fast search engine", "body": "python"},
        {"id": "2", "title": "slow search", "body": "engine python"},
        {"id": "3", "title": "search party"},
    ]))
    assert _search(shard, "search")[0] == 3
    assert {d for _, d in _search(shard, "+engine -slow")[1]} == {"1"}
    assert {d for _, d in _search(shard, '"search engine"')[1]} == {"1"}
    assert {d for _, d in _search(shard, "body:python")[1]} == {"1", "2"}
    assert {d for _, d in _search(shard, "par*")[1]} == {"3"}


def test_blocks_hold_each_posting_once_across_reindex_and_delete(no_ray):
    """Re-indexing a document takes it out of its old batch's postings (same term or not),
    deleting another leaves its batch-mates' postings intact, and the posting lists
    (doc id -> tf, field length, positions) read back from the blocks are exact."""
    shard = ShardIndex(MemoryKV())
    shard.apply("b1", _docs([{"id": "a", "title": "red apple red"}, {"id": "b", "title": "red car"},
                             {"id": "c", "title": "apple pie"}]))
    shard.apply("b2", _docs([{"id": "a", "title": "apple tree"}]))
    shard.apply("b3", ShardBatch(deletes=["c"]))
    lists = posting_lists(shard.data_items())
    assert lists[("title", "red")] == {"b": (1, 2, [0])}
    assert lists[("title", "appl")] == {"a": (1, 2, [0])}
    assert lists[("title", "tree")] == {"a": (1, 2, [1])}
    assert ("title", "pie") not in lists
    assert shard.doc_freqs([("title", "red"), ("title", "appl"), ("_all", "car")]) == [1, 1, 1]
    assert {d for _, d in _search(shard, "red apple")[1]} == {"a", "b"}
    # numbers survive a reopen: the same store gives the same answers
    reopened = ShardIndex(shard.kv)
    assert _search(reopened, "red apple") == _search(shard, "red apple")
    assert reopened.next_docnum == shard.next_docnum == 4


def test_drain_reads_pending_opstamps_in_order_and_stops_at_one_not_written(no_ray):
    """collect_changes reads the pending opstamps by key, oldest first, and stops at an
    opstamp an apply has registered but not yet written (so chunks keep opstamp order)."""
    shard = ShardIndex(MemoryKV())
    shard.apply("b1", _docs([{"id": "a", "title": "one"}]))
    shard.log.sizes[2] = 1  # as ShardIndex.apply registers it just before its write
    entries, log = shard.collect_changes(limit=10_000)
    assert len(log) == 1 and shard.persisted_upto() == 0
    shard.log.sizes.pop(2)
    shard.apply("b2", _docs([{"id": "b", "title": "two"}]))
    shard.ack_changes(log)
    entries, log = shard.collect_changes(limit=10_000)
    assert [k for k, _ in entries if k[:1] == b"D"] == [b"Db"] and shard.persisted_upto() == 1
    shard.ack_changes(log)
    assert shard.collect_changes(limit=10_000) == ([], []) and shard.persisted_upto() == 2


def test_term_counts_are_kept_as_documents_come_and_go(no_ray):
    shard = ShardIndex(MemoryKV())
    shard.apply("b1", _docs([{"id": "a", "title": "red apple"}, {"id": "b", "title": "green apple"}]))
    assert shard.term_count("_all") == len({t for _, t in shard.stats.df if _ == "_all"}) == 3
    shard.apply("b2", _docs([{"id": "a", "title": "blue sky"}]))  # red goes, blue and sky come
    assert shard.term_count("_all") == 4
    shard.apply("b3", ShardBatch(deletes=["a", "b"]))
    assert shard.term_count("_all") == 0
    reopened = ShardIndex(shard.kv)
    assert reopened.term_count("_all") == shard.term_count("_all")


# ------------------------------------------------------------------ snapshot
TYPES = {"section": "keyword", "size": "integer", "score": "float"}


def _typed(docs):
    per_shard, _, _ = split_batch(docs, [], 1, Analyzer(), TYPES)
    return per_shard[0]


def _derived(shard):
    """Everything a shard derives from its T and B entries, in a form two opens can compare."""
    stats = shard.stats
    live = [(i, d) for i, d in enumerate(stats.doc_ids) if d is not None]
    assert [i for i, flag in enumerate(stats.live) if flag] == [i for i, _ in live]
    columns = {}
    for field, column in shard.values.columns.items():
        docs, vals = column.arrays()
        pairs = sorted((int(d), column.term_list[int(v)] if column.kind == "k" else v.item())
                       for d, v in zip(docs, vals) if stats.doc_ids[int(d)] is not None)
        columns[field] = pairs
    return {"df": dict(stats.df), "fields": {f: list(v) for f, v in stats.fields.items()},
            "term_counts": dict(stats.term_counts), "docs": stats.docs, "live": live,
            # a batch that added no documents has a base in memory but no B entry
            "bases": {op: base for op, base in shard.bases.items() if shard.kv.get(K.batch_base_key(op))},
            "next_docnum": shard.next_docnum, "columns": columns}


def _grown_shard(kv):
    shard = ShardIndex(kv)
    shard.apply("b1", _typed([{"id": f"d{i}", "title": f"red apple {i % 3}", "section": f"s{i % 4}",
                               "size": i, "score": i / 2} for i in range(20)]))
    shard.apply("b2", _typed([{"id": "d3", "title": "blue sky", "section": ["x", "y"], "size": 99}]))
    shard.apply("b3", ShardBatch(deletes=["d5", "d7"]))
    shard.apply("b4", _typed([{"id": "new", "title": "green apple", "section": "s1", "size": -4}]))
    return shard


def test_a_snapshot_reopens_the_same_derived_state_without_a_scan(no_ray):
    kv = MemoryKV()
    shard = _grown_shard(kv)
    assert shard.opened_from == "scan" and shard.snapshot_opstamp == -1
    assert shard.write_snapshot() == shard.last_opstamp == 4
    reopened = ShardIndex(kv)
    assert reopened.opened_from == "snapshot" and reopened.snapshot_opstamp == 4
    kv_without = MemoryKV()  # the same store without its snapshot: what a scan derives
    for key, value in kv.scan(b"", b"\xff"):
        if key != b"~S":
            kv_without.write({key: value})
    scanned = ShardIndex(kv_without)
    assert scanned.opened_from == "scan"
    scanned_state = _derived(scanned)
    assert _derived(reopened) == scanned_state == _derived(shard)
    for q in ["apple", "red sky", "green"]:
        assert _search(reopened, q) == _search(scanned, q) == _search(shard, q)
    # the reopened shard keeps working: writes after it, and their effect on a later snapshot
    reopened.apply("b5", _typed([{"id": "d1", "title": "apple pie", "section": "z", "size": 7}]))
    reopened.apply("b6", ShardBatch(deletes=["new"]))
    assert reopened.write_snapshot() == 6
    again = ShardIndex(kv)
    assert again.opened_from == "snapshot"
    assert _derived(again) == _derived(reopened)
    assert _search(again, "apple") == _search(reopened, "apple")


def test_a_stale_or_unreadable_snapshot_is_never_used(no_ray):
    kv = MemoryKV()
    shard = _grown_shard(kv)
    shard.write_snapshot()
    shard.apply("b5", _typed([{"id": "late", "title": "late apple", "section": "s9", "size": 1}]))
    reopened = ShardIndex(kv)  # the snapshot is of opstamp 4, the store is at 5
    assert reopened.opened_from == "scan"
    assert _derived(reopened)["df"] == _derived(shard)["df"]
    assert _search(reopened, "late")[1][0][1] == "late"
    kv.write({b"~S": b"not a pickle"})
    shard.last_opstamp = reopened.last_opstamp
    assert ShardIndex(kv).opened_from == "scan"


def test_restore_drops_any_snapshot(no_ray):
    kv = MemoryKV()
    shard = _grown_shard(kv)
    shard.write_snapshot()
    mirrored = _drain_all(shard)
    target = ShardIndex(kv)
    target.restore(mirrored)  # replays over the same store: derived state rebuilt, snapshot gone
    assert kv.get(b"~S") is None and target.snapshot_opstamp == -1
    assert _derived(target)["df"] == _derived(shard)["df"]


def test_the_log_counts_the_bytes_each_batch_supersedes(no_ray):
    """The compaction trigger's measure of history: an insert supersedes nothing; a re-index
    or delete supersedes exactly the old T and D values; a purge the blocks it rewrote and
    the batch's old block list, once."""
    kv = MemoryKV()
    shard = ShardIndex(kv)
    shard.apply("b1", _docs([{"id": "a", "title": "red apple"}, {"id": "b", "title": "red sky"}]))
    _, log = shard.collect_changes(limit=10_000)
    assert shard.garbage_of(log) == 0
    shard.ack_changes(log)
    old = {k: v for k, v in kv.scan(b"", b"~")}

    def blocks_of(state, *terms):
        return sum(len(v) for k, v in state.items() if k[:1] == b"P" and K.split_block_key(k)[1] in terms)

    shard.apply("b2", _docs([{"id": "a", "title": "green apple"}]))
    # b1 holds one live document of two: b3 purges it (a's postings leave red's and appl's blocks)
    shard.apply("b3", ShardBatch(deletes=["b"]))
    after_b3 = {k: v for k, v in kv.scan(b"", b"~")}
    _, log = shard.collect_changes(limit=10_000)
    assert len(log) == 2
    assert shard.garbage_of(log[:1]) == len(old[b"Ta"]) + len(old[b"Da"])
    l1 = K.batch_blocks_key(1)
    assert shard.garbage_of(log[1:]) == (len(old[b"Tb"]) + len(old[b"Db"]) + blocks_of(old, "red", "appl")
                                         + len(old[l1]))
    shard.ack_changes(log)
    assert shard.garbage_of(log) == 0  # forgotten once drained
    # now b1's documents are both dead: the next apply purges its blocks (all of them go)
    shard.apply("b4", ShardBatch(deletes=["missing"]))
    _, log = shard.collect_changes(limit=10_000)
    assert shard.garbage_of(log) == blocks_of(after_b3, "red", "sky") + len(after_b3[l1])
    assert not [k for k in after_b3 if k[:1] == b"P" and k.endswith(K.opstamp_bytes(1)) and kv.get(k)]


def test_queries_racing_applies_on_other_threads_never_raise(no_ray, tmp_path):
    """The shard actor applies batches on one thread while queries run on others (its
    max_concurrency): a query must never see a half-grown document table. Found by the
    20k-bulk load test as a 500 (a live mask one number shorter than the query's n)."""
    import sys
    import threading

    from raysearch.storage.rocks import RocksKV

    # real RocksDB: its iterators read a consistent snapshot, as in the shard actor
    # (MemoryKV is not meant for concurrent writes)
    shard = ShardIndex(RocksKV(str(tmp_path / "shard"), sync=False))
    shard.apply("seed", _docs([{"id": "s", "title": "apple pie", "n": 1, "tag": "x"}]))
    stop, errors = threading.Event(), []
    match_all_sorted = QueryPlan(match_all=True, sort=[["n", "desc"], ["tag", "asc"]],
                                 facets={"tags": ["terms", "tag", 3], "n": ["stats", "n"]})

    def query():
        while not stop.is_set():
            try:
                _search(shard, "apple")
                _search(shard, "ta*")
                execute(shard, match_all_sorted, 5)
            except Exception as exc:  # noqa: BLE001 -- any exception is the failure
                errors.append(repr(exc))
                return

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter allows
    readers = [threading.Thread(target=query) for _ in range(3)]
    try:
        for t in readers:
            t.start()
        for i in range(400):
            shard.apply(f"b{i}", _docs([{"id": f"d{i}-{j}", "title": "apple tart", "n": i * 3 + j,
                                         "tag": f"t{(i + j) % 7}"} for j in range(3)]))
    finally:
        stop.set()
        for t in readers:
            t.join()
        sys.setswitchinterval(old)
    assert not errors, errors[:3]
    # nothing read before a write was cached after it (a stale list or term dictionary)
    assert _search(shard, "apple")[0] == 1 + 400 * 3
    assert _search(shard, "ta*")[0] == 400 * 3


@pytest.mark.parametrize("worker_terms", [True, False], ids=["terms-sent", "terms-from-prefixes"])
def test_statistics_kept_per_batch_equal_a_rebuild_from_the_documents(no_ray, worker_terms):
    """apply() counts a batch's document frequencies from its blocks (ShardStats.add_batch)
    and its removals per block (remove_batch); a scan of every T entry (what an open
    without a snapshot does) must find the same. The blocks' (field, term) either come with
    the batch (as a worker sends them) or are read from the prefixes."""
    import gzip
    import json

    from tests.conftest import DEBIAN_SAMPLE

    with gzip.open(DEBIAN_SAMPLE, "rt") as f:
        docs = [json.loads(line) for _, line in zip(range(900), f)]
    shard = ShardIndex(MemoryKV())
    analyzer = Analyzer()
    for i in range(0, 600, 200):
        per_shard, _, _ = split_batch(docs[i:i + 200], [], 1, analyzer, TYPES)
        if not worker_terms:
            per_shard[0].block_terms = []
        shard.apply(f"add{i}", per_shard[0])
    changed = [{**d, "body": d["title"]} for d in docs[100:300]] + docs[600:900]  # re-index and add
    per_shard, _, _ = split_batch(changed, [d["id"] for d in docs[:50]], 1, analyzer, TYPES)
    shard.apply("mixed", per_shard[0])
    assert shard.stats.docs == 850
    assert shard.kv.get(K.SNAPSHOT) is None  # so the reopen below scans every T entry
    reopened = ShardIndex(shard.kv)
    assert _derived(reopened) == _derived(shard)
    # nearly everything deleted in one batch: most terms and some fields leave the counts
    per_shard, _, _ = split_batch([], [d["id"] for d in docs[50:890]], 1, analyzer, TYPES)
    shard.apply("most", per_shard[0])
    assert shard.stats.docs == 10
    assert _derived(ShardIndex(shard.kv)) == _derived(shard)


def _block_postings_total(shard) -> int:
    from raysearch.index.encoding import block_size
    return sum(block_size(v) for k, v in shard.data_items() if k[:1] == K.POSTING)


def test_random_updates_mark_dead_and_purges_keep_blocks_bounded_and_exact(no_ray):
    """Updates to random ids leave their old postings in place, marked dead; a batch whose
    blocks hold at most half live documents is purged on a later apply. Whatever the
    purges have done so far, searches, statistics and posting lists equal those of a fresh
    index of the same final documents, the blocks never hold more than a bounded share of
    dead postings, and a restore from the mirrored log and a reopen reproduce it all."""
    import random
    rng = random.Random(5)
    words = "red green blue apple pie car tree sky river stone light dark".split()

    def doc(i, version):
        return {"id": f"d{i}", "title": " ".join(rng.choice(words) for _ in range(3)), "body": f"v{version}"}

    shard = ShardIndex(MemoryKV())
    final = {}
    for b in range(10):
        docs = [doc(b * 20 + j, 0) for j in range(20)]
        final.update({d["id"]: d for d in docs})
        shard.apply(f"insert-{b}", _docs(docs))
    mirrored = _drain_all(shard)
    peak_ratio = 0.0
    for r in range(30):
        ids = rng.sample(range(200), 20)
        docs = [doc(i, r + 1) for i in ids]
        final.update({d["id"]: d for d in docs})
        deleted = [f"d{i}" for i in rng.sample(range(200), 2)]
        for d in deleted:
            final.pop(d, None)
        shard.apply(f"update-{r}", _docs(docs))
        shard.apply(f"delete-{r}", ShardBatch(deletes=deleted))
        mirrored += _drain_all(shard)
        live = sum(len(v) for v in posting_lists(shard.data_items()).values())
        peak_ratio = max(peak_ratio, _block_postings_total(shard) / live)
    fresh = ShardIndex(MemoryKV())
    fresh.apply("all", _docs(list(final.values())))
    assert posting_lists(shard.data_items()) == posting_lists(fresh.data_items())
    for q in ["red", "apple pie", "v3", "blue OR v30", '"red apple"', "sky -river", "ap*"]:
        assert _search(shard, q) == _search(fresh, q), q
    assert shard.doc_count() == fresh.doc_count() == len(final)
    # purges ran and kept the dead share bounded (a shard of 200 documents purges whole
    # batches of 20, hence the slack over PURGE_DEAD_SHARE, 25 %); without them it is 4.4x
    assert peak_ratio < 2.0, peak_ratio
    purged_to = [K.split_batch_blocks(v)[0] for k, v in shard.data_items() if k[:1] == K.BATCH_BLOCKS]
    assert any(held < 20 for held in purged_to)
    # idle: purges by writes of their own, down to PURGE_IDLE_SHARE, change no answer
    answers = [_search(shard, q) for q in ["red", "apple pie", '"red apple"']]
    while shard.purge():
        pass
    dead, held = shard.dead_share()
    assert dead <= 0.01 * held and _block_postings_total(shard) <= 1.01 * live
    assert posting_lists(shard.data_items()) == posting_lists(fresh.data_items())
    assert [_search(shard, q) for q in ["red", "apple pie", '"red apple"']] == answers
    mirrored += _drain_all(shard)
    copy = ShardIndex(MemoryKV())
    copy.restore(mirrored)
    assert list(copy.data_items()) == list(shard.data_items())
    assert copy.last_opstamp == shard.last_opstamp  # a restore continues after the purges' opstamps
    for q in ["red", "apple pie", '"red apple"']:
        assert _search(copy, q) == _search(shard, q) == _search(ShardIndex(shard.kv), q)
    # reopened, the shard first assumes each batch's blocks hold the whole batch; reading the
    # L entries corrects that without rewriting anything
    reopened = ShardIndex(shard.kv)
    assert reopened.purge() == 0 and reopened.dead_share()[0] <= 0.01 * reopened.dead_share()[1]


def test_doc_values_of_removed_versions_are_dropped_once_they_are_many(no_ray, monkeypatch):
    """Months of updates must not grow a shard's doc values without bound: a column is
    replaced by a copy of its live pairs once it has doubled (keywords no live document uses
    leave its dictionary), and every value a search reads stays what a fresh open derives."""
    import random

    import numpy as np

    from raysearch.index import doc_values

    monkeypatch.setattr(doc_values, "COMPACT_MIN_PAIRS", 64)
    rng = random.Random(7)
    shard = ShardIndex(MemoryKV())

    def doc(i, r):
        return {"id": f"d{i}", "title": "apple", "section": f"sku-{r}-{i}", "size": rng.randrange(1000)}

    shard.apply("insert", _typed([doc(i, 0) for i in range(100)]))
    most_pairs, most_terms = 0, 0
    for r in range(1, 60):
        shard.apply(f"update-{r}", _typed([doc(i, r) for i in rng.sample(range(100), 30)]))
        if r % 7 == 0:
            shard.apply(f"delete-{r}", ShardBatch(deletes=[f"d{rng.randrange(100)}"]))
        section = shard.values.column("section")
        most_pairs = max(most_pairs, len(section.docs), len(shard.values.column("size").docs))
        most_terms = max(most_terms, len(section.term_list))
    # 1,870 versions were written; the columns never held more than twice the live pairs
    # (or the 64 below which a column is not copied) plus the batch that doubled them
    assert most_pairs <= 2 * 100 + 30 and most_terms <= 2 * 100 + 30, (most_pairs, most_terms)
    assert len(shard.values.column("section").docs) < 1870
    reopened = ShardIndex(shard.kv)
    assert _derived(reopened)["columns"] == _derived(shard)["columns"]
    n = len(shard.stats.doc_ids)
    live = np.frombuffer(bytes(shard.stats.live), dtype=np.bool_)
    for field in ("section", "size"):
        for take_max in (False, True):
            # what sorting reads: the values (a keyword's comparable is its rank in a
            # dictionary that may still hold dead keywords, so compare what it displays)
            read = []
            for shard_ in (shard, reopened):
                column = shard_.values.column(field)
                keys = column.per_doc(n, take_max)
                read.append([column.display(v) if not np.isnan(v) else None for v in keys[live].tolist()])
            assert read[0] == read[1] and None not in read[0]


def test_the_posting_cache_is_sized_from_the_shard_and_the_machines_memory():
    """Unset, a shard's posting cache holds a quarter of the tokens it has indexed, at least
    4M postings, at most what 1/16 of the machine's memory holds at 24 bytes a posting, and it
    follows the shard as it grows; a fixed setting stays fixed."""
    from raysearch.index.shard_index import posting_cache_bound

    gb = 1 << 30
    assert posting_cache_bound(0, 24 * gb) == 4_000_000  # a small shard: the floor
    assert posting_cache_bound(100_000_000, 24 * gb) == 25_000_000  # a quarter of its tokens
    assert posting_cache_bound(10_000_000_000, 24 * gb) == 24 * gb // 16 // 24  # the memory's share
    assert posting_cache_bound(100_000_000, 1 * gb) == gb // 16 // 24  # a small machine: below the floor

    shard = ShardIndex(MemoryKV())
    assert shard.cache.max_postings == posting_cache_bound(0, _machine_memory())
    many = [{"id": f"d{i}", "title": " ".join(f"w{j}" for j in range(200))} for i in range(100)]
    shard.apply("b1", _docs(many))
    tokens = sum(length for _, length in shard.stats.fields.values())
    assert tokens >= 100 * 200 and shard.cache.max_postings == posting_cache_bound(tokens, _machine_memory())
    fixed = ShardIndex(MemoryKV(), 1234)
    fixed.apply("b1", _docs(many))
    assert fixed.cache.max_postings == 1234


def test_a_smaller_bound_drops_the_least_recently_used_lists():
    import numpy as np

    from raysearch.index.posting_cache import PostingArrays, PostingCache

    cache = PostingCache(100)
    for key in (b"a", b"b", b"c"):
        cache.put(key, PostingArrays(np.arange(30), np.ones(30), np.ones(30)), cache.generation)
    cache.get(b"a")  # b is now the least recently used
    cache.resize(60)
    assert cache.get(b"b") is None and cache.get(b"a") is not None and cache.get(b"c") is not None
    assert cache.size == 60


def _machine_memory():
    from raysearch.index.shard_index import _memory_bytes

    return _memory_bytes()
