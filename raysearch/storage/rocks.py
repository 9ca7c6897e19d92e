"""RocksDB (rocksdict) behind the KV interface. One writer per DB: the ShardStore."""

from __future__ import annotations

import shutil
from typing import Iterator

from rocksdict import Options, ReadOptions, Rdict, WriteBatch, WriteOptions


class RocksKV:
    def __init__(self, path: str, sync: bool = True):
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        # Modest memtables: a service holds several shards on a small machine.
        options.set_write_buffer_size(16 << 20)
        options.set_max_write_buffer_number(2)
        self.path = path
        self._db = Rdict(path, options)
        # sync=True: a batch acknowledged by the shard survives a power cut, not only kill -9.
        self._write_options = WriteOptions()
        self._write_options.sync = sync  # False only for scratch stores (verify's replay)

    def get(self, key: bytes) -> bytes | None:
        return self._db.get(key)

    def multi_get(self, keys: list[bytes]) -> list[bytes | None]:
        return self._db.get(keys) if keys else []

    def scan(self, start: bytes, stop: bytes) -> Iterator[tuple[bytes, bytes]]:
        read_options = ReadOptions()
        read_options.set_iterate_upper_bound(stop)
        yield from self._db.items(from_key=start, read_opt=read_options)

    def write(self, changes: dict[bytes, bytes | None]) -> None:
        batch = WriteBatch(raw_mode=True)
        for key, value in changes.items():
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        self._db.write(batch, self._write_options)

    def free_bytes(self) -> int:
        """Free space on the filesystem under this store (a full disk's recovery waits for it)."""
        return shutil.disk_usage(self.path).free

    def close(self) -> None:
        self._db.close()
