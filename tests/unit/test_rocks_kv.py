"""RocksKV's keys kept apart (storage/rocks.py): the shard's snapshot lives in a column
family of its own, so that no seek of a posting list reads it. Real RocksDB, no Ray."""

import pytest

from raysearch.analysis.analyzer import Analyzer
from raysearch.index import keys as K
from raysearch.index.batch import split_batch
from raysearch.index.shard_index import ShardIndex
from raysearch.storage.kv import MemoryKV
from raysearch.storage.rocks import RocksKV


def _batch(docs):
    per_shard, _, _ = split_batch(docs, [], 1, Analyzer())
    return per_shard[0]


@pytest.fixture(params=["rocks", "memory"])
def make_kv(request, tmp_path):
    opened = []

    def make():
        kv = RocksKV(str(tmp_path / "kv"), sync=False) if request.param == "rocks" else MemoryKV()
        opened.append(kv)
        return kv

    yield make
    for kv in opened:
        kv.close()


def test_a_key_kept_apart_reads_and_writes_as_before_but_no_scan_yields_it(make_kv):
    kv = make_kv()
    kv.write({b"a": b"1", b"~S": b"big", b"z": b"2"})
    kv.keep_apart([b"~S"])  # moved from beside the rest
    assert kv.get(b"~S") == b"big" and kv.multi_get([b"a", b"~S", b"q"]) == [b"1", b"big", None]
    assert list(kv.scan(b"", b"\xff")) == [(b"a", b"1"), (b"z", b"2")]
    kv.write({b"~S": b"bigger", b"a": None})  # one write across both
    assert kv.get(b"~S") == b"bigger" and kv.get(b"a") is None
    kv.write({b"~S": None})
    assert kv.get(b"~S") is None and kv.multi_get([b"~S"]) == [None]


def test_a_value_kept_apart_survives_reopening_and_is_not_in_the_main_family(tmp_path):
    path = str(tmp_path / "kv")
    kv = RocksKV(path, sync=False)
    kv.write({b"~S": b"old layout", b"P\x00x": b"p"})  # a store from before: all in one family
    kv.close()
    kv = RocksKV(path, sync=False)
    kv.keep_apart([b"~S"])
    kv.close()
    kv = RocksKV(path, sync=False)
    assert kv._db.get(b"~S") is None  # the main family no longer holds it
    kv.keep_apart([b"~S"])
    assert kv.get(b"~S") == b"old layout" and kv.get(b"P\x00x") == b"p"
    kv.close()


def test_the_shards_snapshot_is_kept_apart_and_the_shard_reopens_from_it(tmp_path):
    path = str(tmp_path / "shard")
    kv = RocksKV(path, sync=False)
    shard = ShardIndex(kv)
    shard.apply("b1", _batch([{"id": f"d{i}", "title": f"apple pie number {i}"} for i in range(50)]))
    shard.write_snapshot()
    assert kv._db.get(K.SNAPSHOT) is None and kv.get(K.SNAPSHOT)  # written apart
    assert all(key != K.SNAPSHOT for key, _ in kv.scan(b"", b"\xff"))
    kv.close()
    kv = RocksKV(path, sync=False)
    reopened = ShardIndex(kv)
    assert reopened.opened_from == "snapshot" and reopened.doc_count() == 50
    kv.close()
