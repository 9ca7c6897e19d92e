"""ops/worker_pool.py with plain objects for workers (unit test: no Ray)."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from raysearch.ops.worker_pool import WorkerPool


class Recorder:
    """Calls that take a while, recording which worker ran what and how many ran at once."""

    def __init__(self, delay: float = 0.01, fail: set | None = None):
        self.delay, self.fail = delay, fail or set()
        self.running = 0
        self.most = 0
        self.ran: list[tuple[str, int]] = []

    async def __call__(self, worker: str, batch: int) -> str:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(self.delay)
            self.ran.append((worker, batch))
            if batch in self.fail:
                raise RuntimeError(f"batch {batch} failed")
            return worker
        finally:
            self.running -= 1


def _pool(call, size: int = 12, limit: int = 4, **kw) -> WorkerPool:
    return WorkerPool(lambda: [f"w{i}" for i in range(size)], call, lambda pool_size: limit, **kw)


def test_no_more_batches_at_once_than_the_limit_and_all_of_them_run():
    call = Recorder()
    pool = _pool(call, limit=4)

    async def main():
        return await asyncio.gather(*(pool.run(b) for b in range(40)))

    asyncio.run(main())
    assert call.most == 4
    assert sorted(b for _, b in call.ran) == list(range(40))
    assert pool.busy == 0


def test_the_last_worker_freed_goes_first():
    """Sequential batches all land on one worker (round robin would have used all twelve)."""
    call = Recorder(delay=0)
    pool = _pool(call, limit=4)

    async def main():
        for b in range(10):
            await pool.run(b)

    asyncio.run(main())
    assert {w for w, _ in call.ran} == {"w0"}


def test_under_load_only_the_limit_of_workers_is_used():
    call = Recorder()
    pool = _pool(call, limit=3)

    async def main():
        await asyncio.gather(*(pool.run(b) for b in range(30)))

    asyncio.run(main())
    assert len({w for w, _ in call.ran}) == 3


def test_a_failed_batch_frees_its_worker_and_the_error_reaches_the_caller():
    call = Recorder(fail={1})
    pool = _pool(call, size=2, limit=2)

    async def main():
        return await asyncio.gather(*(pool.run(b) for b in range(6)), return_exceptions=True)

    results = asyncio.run(main())
    assert isinstance(results[1], RuntimeError) and "batch 1" in str(results[1])
    assert all(isinstance(r, str) for i, r in enumerate(results) if i != 1)
    assert pool.busy == 0


def test_a_cancelled_wait_takes_no_worker():
    call = Recorder(delay=0.05)
    pool = _pool(call, size=1, limit=1)

    async def main():
        first = asyncio.ensure_future(pool.run(0))
        await asyncio.sleep(0.01)
        waiting = asyncio.ensure_future(pool.run(1))
        await asyncio.sleep(0.01)
        waiting.cancel()
        await first
        return await pool.run(2)

    assert asyncio.run(main()) == "w0"
    assert [b for _, b in call.ran] == [0, 2]


@pytest.mark.parametrize("limit, expected", [(0, 1), (50, 5)])
def test_the_limit_is_kept_between_one_and_the_pool(limit, expected):
    call = Recorder()
    pool = _pool(call, size=5, limit=limit)

    async def main():
        await asyncio.gather(*(pool.run(b) for b in range(20)))

    asyncio.run(main())
    assert pool.limit == expected and call.most == expected


def test_the_limit_is_read_again_as_the_cluster_changes():
    limits = itertools.chain([1], itertools.repeat(3))
    call = Recorder()
    pool = WorkerPool(lambda: ["a", "b", "c"], call, lambda size: next(limits), refresh_s=0)

    async def main():
        await pool.run(0)
        assert pool.limit == 1
        await asyncio.gather(*(pool.run(b) for b in range(1, 10)))

    asyncio.run(main())
    assert pool.limit == 3 and call.most > 1
