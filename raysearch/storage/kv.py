"""The key-value interface a shard needs, and an in-memory version for unit tests."""

from __future__ import annotations

import bisect
from typing import Iterable, Iterator, Protocol


class KV(Protocol):
    def get(self, key: bytes) -> bytes | None: ...
    def multi_get(self, keys: list[bytes]) -> list[bytes | None]: ...
    def scan(self, start: bytes, stop: bytes) -> Iterator[tuple[bytes, bytes]]: ...
    def write(self, changes: dict[bytes, bytes | None]) -> None:
        """Apply puts (value) and deletes (None) atomically."""
    def keep_apart(self, keys: Iterable[bytes]) -> None:
        """These keys hold large values read rarely: keep them where no scan or seek of the
        other keys reads them (RocksKV: their own column family). get, multi_get and write
        take them as before; scan never yields them."""
    def close(self) -> None: ...


class MemoryKV:
    """Sorted in-memory KV with the same semantics as RocksKV (unit tests only)."""

    def __init__(self):
        self._data: dict[bytes, bytes] = {}
        self._keys: list[bytes] = []
        self._apart: dict[bytes, bytes] = {}
        self._apart_keys: set[bytes] = set()

    def keep_apart(self, keys):
        for key in set(keys) - self._apart_keys:
            if key in self._data:
                self._apart[key] = self._data[key]
                self.write({key: None})
            self._apart_keys.add(key)

    def get(self, key):
        if key in self._apart_keys:
            return self._apart.get(key)
        return self._data.get(key)

    def multi_get(self, keys):
        return [self.get(k) for k in keys]

    def scan(self, start, stop):
        i = bisect.bisect_left(self._keys, start)
        keys = self._keys
        while i < len(keys) and keys[i] < stop:
            yield keys[i], self._data[keys[i]]
            i += 1

    def write(self, changes):
        for key, value in changes.items():
            if key in self._apart_keys:
                if value is None:
                    self._apart.pop(key, None)
                else:
                    self._apart[key] = value
            elif value is None:
                if key in self._data:
                    del self._data[key]
                    self._keys.pop(bisect.bisect_left(self._keys, key))
            else:
                if key not in self._data:
                    bisect.insort(self._keys, key)
                self._data[key] = value

    def close(self):
        pass
