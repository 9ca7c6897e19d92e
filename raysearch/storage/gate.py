"""A gate between a store's readers and the calls that close it.

A ShardStore serves reads on up to 16 threads without its write lock, while `rebuild`
(restore) and `drop` (DELETE of the index) close its RocksDB and, for a rebuild, fill a
new one from MongoDB for minutes. A read must never run on a closed store (an error
from deep inside RocksDB) nor on a half-restored one (wrong totals): readers pass
through the gate, and closing it waits for the reads in flight, then turns new ones
away with a clear error until it opens again.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator


class ReadGate:
    def __init__(self, refused: Callable[[str], Exception]):
        self._refused = refused  # builds the error a reader gets while the gate is shut
        self._cond = threading.Condition()
        self._readers = 0
        self._shut_because: str | None = None

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            if self._shut_because is not None:
                raise self._refused(self._shut_because)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def shut(self, because: str, reopen: bool = True) -> Iterator[None]:
        """Turn new readers away (naming `because`), wait for those inside, run the block;
        then let readers in again unless `reopen` is False (a dropped store stays shut) or
        the block failed."""
        with self._cond:
            self._shut_because = because
            self._cond.wait_for(lambda: self._readers == 0)
        try:
            yield
        except BaseException as exc:  # the store may be half-made: it stays shut, saying why
            with self._cond:
                self._shut_because = f"{because}, which failed ({type(exc).__name__}: {exc}); run it again"
            raise
        if reopen:
            with self._cond:
                self._shut_because = None

    @property
    def is_shut(self) -> bool:
        return self._shut_because is not None
