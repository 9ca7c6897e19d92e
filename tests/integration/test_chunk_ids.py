"""The chunk log's bookkeeping uses lookups by _id only (storage/mongo.py): the next log
seq is found by galloping and bisecting, whether a shard has chunks by two point lookups,
and an index's chunks are deleted by _id. Checked against what a full scan of the
collection says, on a real MongoDB wire-protocol server (SecantusDB, started by the tests):
a wrong next seq would overwrite a chunk not yet compacted (a lost entry) or leave a gap
that restore would never read."""

from __future__ import annotations

import pytest

from raysearch.storage.mongo import MongoStore


@pytest.fixture(scope="module")
def store(mongo_server):
    s = MongoStore(mongo_server.uri, "chunk_ids_test")
    s.ensure_schema()
    yield s
    s.client.drop_database("chunk_ids_test")
    s.close()


def _scanned_next_seq(store: MongoStore, index: str, shard: int) -> int:
    """The reference: every log chunk of the shard, by a full scan."""
    seqs = [d["seq"] for d in store.chunks.find({"index": index, "shard": shard, "seq": {"$exists": True}})]
    return max([*seqs, store.head(index, shard)["upto"]]) + 1


def _write(store: MongoStore, index: str, shard: int, count: int) -> None:
    first = store.next_chunk_seq(index, shard)
    store.write_chunks(index, shard, first, [(1, 1, b"x%d" % (first + i)) for i in range(count)])


def test_next_seq_matches_a_full_scan_as_the_log_grows_and_is_compacted(store):
    index = "grow"
    assert store.next_chunk_seq(index, 0) == 0
    assert not store.has_chunks(index, 0)
    total = 0
    for count in [1, 1, 2, 3, 5, 8, 13, 21, 34, 1, 55]:  # crosses every power of two up to 128
        _write(store, index, 0, count)
        total += count
        assert store.next_chunk_seq(index, 0) == total == _scanned_next_seq(store, index, 0)
        assert store.has_chunks(index, 0)
    # shard 1 of the same index is independent of shard 0
    assert store.next_chunk_seq(index, 1) == 0 and not store.has_chunks(index, 1)

    # a compaction covering seqs up to 99: a generation of 3 chunks, the log below 100 dropped
    head = store.head(index, 0)
    store.write_generation(index, 0, 1, [(1, 1, b"g0"), (1, 1, b"g1"), (1, 1, b"g2")])
    store.switch_generation(index, 0, 1, 99, live_entries=3, live_bytes=6, chunks=3, replaced=head)
    store.drop_replaced(index, 0)
    assert store.next_chunk_seq(index, 0) == total == _scanned_next_seq(store, index, 0)
    _write(store, index, 0, 7)
    assert store.next_chunk_seq(index, 0) == total + 7 == _scanned_next_seq(store, index, 0)
    assert store.has_chunks(index, 0)

    # everything compacted: no log chunk left, the generation alone says the shard has data
    head = store.head(index, 0)
    store.write_generation(index, 0, 2, [(1, 1, b"h0")])
    store.switch_generation(index, 0, 2, total + 6, live_entries=1, live_bytes=2, chunks=1, replaced=head)
    store.drop_replaced(index, 0)
    assert store.next_chunk_seq(index, 0) == total + 7 == _scanned_next_seq(store, index, 0)
    assert store.has_chunks(index, 0)
    assert [bytes(b) for b in store.iter_chunks(index, 0)] == [b"h0"]


def test_deleting_an_index_removes_its_chunks_by_id_even_with_a_drop_pending(store):
    index, other = "doomed", "kept"
    for shard in range(3):
        _write(store, index, shard, 5 + shard)
    _write(store, other, 0, 4)
    # shard 1: a compaction switched generations but crashed before dropping what it replaced
    head = store.head(index, 1)
    store.write_generation(index, 1, 1, [(1, 1, b"g0"), (1, 1, b"g1")])
    store.switch_generation(index, 1, 1, 3, live_entries=2, live_bytes=4, chunks=2, replaced=head)
    assert store.head(index, 1).get("drop")

    store.delete_index(index, shards=3)
    assert store.chunks.count_documents({"index": index}) == 0
    assert store.heads.count_documents({"_id": {"$regex": "^doomed:"}}) == 0
    assert not any(store.has_chunks(index, shard) for shard in range(3))
    # another index is untouched
    assert store.next_chunk_seq(other, 0) == 4 == _scanned_next_seq(store, other, 0)


def test_chunk_payloads_are_compressed_and_older_uncompressed_chunks_still_read(store):
    from bson.binary import Binary

    from raysearch.index.encoding import decode_entries, encode_columns

    index = "codec"
    entries = [(b"D%05d" % i, b'{"title": "package %d", "body": "a library for parsing"}' % i) for i in range(500)]
    blob = encode_columns([k for k, _ in entries], [v for _, v in entries])
    # a chunk as raysearch wrote them before compression (no codec field), then a new one
    store.chunks.insert_one({"_id": "codec:0:000000000000", "index": index, "shard": 0, "seq": 0,
                             "entries": 1, "postings": 1, "data": Binary(encode_columns([b"Dold"], [b"{}"]))})
    store.write_chunks(index, 0, store.next_chunk_seq(index, 0), [(len(entries), len(entries), blob)])
    stored = store.chunks.find_one({"_id": "codec:0:000000000001"})
    assert stored["codec"] == "zstd" and len(stored["data"]) < len(blob) / 3
    replayed = [e for payload in store.iter_chunks(index, 0) for e in decode_entries(payload)]
    assert replayed == [(b"Dold", b"{}"), *entries]
