"""RocksDB (rocksdict) behind the KV interface. One writer per DB: the ShardStore."""

from __future__ import annotations

import shutil
from typing import Iterable, Iterator

from rocksdict import BlockBasedOptions, Options, ReadOptions, Rdict, WriteBatch, WriteOptions

APART = "apart"  # the column family of the keys kept apart (keep_apart)


class RocksKV:
    def __init__(self, path: str, sync: bool = True):
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        options.create_missing_column_families(True)
        # Modest memtables: a service holds several shards on a small machine.
        options.set_write_buffer_size(16 << 20)
        options.set_max_write_buffer_number(2)
        # Bloom filters (10 bits a key, ~1 % false positives): a point lookup then reads only
        # the files that may hold its key. Purges and removals look up thousands of keys a
        # batch (a purge reads every block of the batch it cleans); scans gain nothing.
        table = BlockBasedOptions()
        table.set_bloom_filter(10, False)
        options.set_block_based_table_factory(table)
        apart_options = Options(raw_mode=True)
        apart_options.set_write_buffer_size(4 << 20)
        self.path = path
        self._db = Rdict(path, options, column_families={APART: apart_options})
        self._apart = self._db.get_column_family(APART)
        self._apart_handle = self._db.get_column_family_handle(APART)
        self._apart_keys: frozenset[bytes] = frozenset()
        # sync=True: a batch acknowledged by the shard survives a power cut, not only kill -9.
        self._write_options = WriteOptions()
        self._write_options.sync = sync  # False only for scratch stores (verify's replay)

    def keep_apart(self, keys: Iterable[bytes]) -> None:
        """Keep these keys in a column family of their own, moving any stored beside the rest.

        Why: they hold large values read once (the shard's snapshot, tens of MB at 500k
        documents), and RocksDB stores a value in one data block. A seek reads the block of
        the first key at or after its target in every level-0 file, so in a file where the
        snapshot was the only key (written while idle, then flushed) every posting scan
        decompressed the whole snapshot: a search's cold reads took 61.6 ms p50 instead of 2.7
        on a 511k-document shard (benchmarks/README.md). Scans never see these keys."""
        keys = frozenset(keys)
        moved = []
        batch = WriteBatch(raw_mode=True)
        for key in keys - self._apart_keys:
            value = self._db.get(key)
            if value is not None:  # a store written before the keys were kept apart
                batch.put(key, value, self._apart_handle)
                batch.delete(key)
                moved.append(key)
        if moved:
            self._db.write(batch, self._write_options)
            # The old value's block stays in its file until a compaction drops it, and seeks
            # would go on reading it: compact the files that hold it now, once.
            for key in moved:
                self._db.compact_range(key, key + b"\x00")
        self._apart_keys |= keys

    def get(self, key: bytes) -> bytes | None:
        if key in self._apart_keys:
            return self._apart.get(key)
        return self._db.get(key)

    def multi_get(self, keys: list[bytes]) -> list[bytes | None]:
        if not keys:
            return []
        if self._apart_keys.isdisjoint(keys):
            return self._db.get(keys)
        return [self.get(key) for key in keys]

    def scan(self, start: bytes, stop: bytes) -> Iterator[tuple[bytes, bytes]]:
        read_options = ReadOptions()
        read_options.set_iterate_upper_bound(stop)
        yield from self._db.items(from_key=start, read_opt=read_options)

    def write(self, changes: dict[bytes, bytes | None]) -> None:
        batch = WriteBatch(raw_mode=True)
        apart = self._apart_keys
        if apart.isdisjoint(changes):  # the usual write: one branch per key
            put, delete = batch.put, batch.delete
            for key, value in changes.items():
                if value is None:
                    delete(key)
                else:
                    put(key, value)
            self._db.write(batch, self._write_options)
            return
        for key, value in changes.items():
            if key in apart:
                if value is None:
                    batch.delete(key, self._apart_handle)
                else:
                    batch.put(key, value, self._apart_handle)
            elif value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        self._db.write(batch, self._write_options)

    def free_bytes(self) -> int:
        """Free space on the filesystem under this store (a full disk's recovery waits for it)."""
        return shutil.disk_usage(self.path).free

    def close(self) -> None:
        self._apart = self._apart_handle = None  # they hold the database open
        self._db.close()
