"""verify's merge join and the replay of chunks into a scratch store (unit: no Ray)."""

from raysearch.index import keys as K
from raysearch.index.compaction import live_state, replay_into
from raysearch.index.encoding import encode_columns
from raysearch.index.verification import compare_sorted
from raysearch.storage.kv import MemoryKV


def _block(field, term, op):
    return K.block_key(K.term_prefix(field, term), K.opstamp_bytes(op))


def test_equal_streams_have_no_mismatch_and_count_lists():
    items = sorted([(_block("_all", "a", 1), b"x"), (_block("_all", "a", 2), b"y"), (_block("_all", "b", 1), b"z"),
                    (K.doc_key("1"), b"{}"), (K.doc_terms_key("1"), b"t")])
    report = compare_sorted(items, list(items))
    assert report == {"entries": 5, "terms": 2, "mismatches": []}


def test_every_kind_of_difference_is_named():
    left = sorted([(_block("_all", "a", 1), b"x"), (_block("_all", "b", 1), b"z"), (K.doc_key("1"), b"{}"),
                   (K.doc_key("2"), b"{}")])
    right = sorted([(_block("_all", "a", 1), b"x"), (_block("_all", "b", 1), b"CHANGED"), (_block("_all", "c", 3), b"q"),
                    (K.doc_key("1"), b"{\"x\":1}")])
    report = compare_sorted(left, right)
    assert report["terms"] == 3 and report["entries"] == 5
    assert {"field": "_all", "term": "b"} in report["mismatches"]  # value differs
    assert {"field": "_all", "term": "c"} in report["mismatches"]  # only on one side
    assert {"field": "_all", "term": "a"} not in report["mismatches"]
    assert {"key": "D1"} in report["mismatches"] and {"key": "D2"} in report["mismatches"]
    assert len(compare_sorted(left, right, max_mismatches=1)["mismatches"]) == 1


def test_the_join_streams_both_sides():
    """Bounded memory: neither side is read more than one item ahead of the other."""
    n = 10_000
    pulled = {"left": 0, "right": 0}
    worst = [0]

    def side(name):
        for i in range(n):
            pulled[name] += 1
            worst[0] = max(worst[0], abs(pulled["left"] - pulled["right"]))
            yield K.doc_key(f"{i:06d}"), b"v"

    seen = []
    report = compare_sorted(side("left"), side("right"), progress=seen.append, every=2_500)
    assert report["entries"] == n and not report["mismatches"]
    assert worst[0] <= 1
    assert seen == [2_500, 5_000, 7_500, 10_000]


def test_replay_into_a_store_equals_the_in_memory_replay():
    blobs = [encode_columns([b"Da", b"Db", b"Dc"], [b"1", b"2", b"3"]),
             encode_columns([b"Db", b"Dc"], [None, b"33"]),
             encode_columns([b"Dd", b"Da"], [b"4", None])]
    kv = MemoryKV()
    assert replay_into(kv, blobs, group=2) == 7
    assert dict(kv.scan(b"", b"~")) == live_state(blobs) == {b"Dc": b"33", b"Dd": b"4"}


def test_cut_sorted_streams_the_live_state_into_bounded_chunks():
    from raysearch.index.compaction import cut_sorted
    from raysearch.index.encoding import decode_entries

    items = [(K.doc_key(f"{i:05d}"), b"v%d" % i) for i in range(2_500)]
    chunks = list(cut_sorted(iter(items), max_postings=300, group=1_000))
    assert all(entries <= 300 for entries, _, _ in chunks)
    assert [e for _, _, blob in chunks for e in decode_entries(blob)] == items
