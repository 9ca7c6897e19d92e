"""Which IndexWorker takes the next batch, and how many batches are analysed at once.

Pure asyncio (no Ray): the TrackerActor gives it the worker handles and a way to call one
(actors/tracker.py); unit tests give it plain objects.

Two choices, both about a pool larger than the machine:
- **The last worker freed goes first** (a stack, not a queue). A worker's analyzer keeps a
  table of the tokens it has seen (analysis/analyzer.py): a batch on a warm worker costs
  less than one on a worker that has seen little, and round robin over twelve workers
  kept all twelve lukewarm. The idle ones also stay small (their heaps are not refilled).
- **At most `limit` batches at once**, by default twice the cluster's CPUs: a worker
  spends part of a batch waiting for its shards, so one CPU keeps about two busy; more at
  once only share the CPUs thinner (and each holds a batch's arrays in memory). The
  limit follows the cluster as nodes come and go (read again every `refresh_s`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable, Sequence


class WorkerPool:
    def __init__(self, workers: Callable[[], Sequence], call: Callable[..., Awaitable],
                 limit: Callable[[int], int], refresh_s: float = 60.0):
        """`workers()` makes the handles (once, on first use); `call(worker, *args)` runs a
        batch on one; `limit(pool_size)` says how many may run at once (read again every
        `refresh_s`)."""
        self._make, self._call, self._limit_of, self._refresh_s = workers, call, limit, refresh_s
        self._free: list = []
        self._size = 0
        self._started = False
        self._busy = 0
        self._limit = 1
        self._limit_read = -1e18
        self._changed: asyncio.Condition | None = None

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def busy(self) -> int:
        return self._busy

    def _start(self) -> None:
        handles = list(self._make())
        self._size = len(handles)
        self._free = handles[::-1]  # worker 0 on top: the first batches go to the low numbers
        self._started = True

    def _read_limit(self) -> None:
        now = time.monotonic()
        if now - self._limit_read >= self._refresh_s:
            self._limit_read = now
            self._limit = max(1, min(self._size, int(self._limit_of(self._size))))

    async def run(self, *args):
        """Run one batch on a free worker (waiting for one, and for the limit)."""
        if self._changed is None:
            self._changed = asyncio.Condition()
        if not self._started:
            self._start()
        async with self._changed:
            self._read_limit()
            await self._changed.wait_for(lambda: self._free and self._busy < self._limit)
            worker = self._free.pop()
            self._busy += 1
        try:
            return await self._call(worker, *args)
        finally:
            async with self._changed:  # freed before any bookkeeping of the batch's result
                self._free.append(worker)
                self._busy -= 1
                self._changed.notify_all()
