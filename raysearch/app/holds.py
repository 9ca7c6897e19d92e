"""Waiting on the tracker's hold of an index's writes (ops/tracker.py `freeze`), shared by
snapshots (app/snapshots.py) and reindex (app/reindex.py): both cut an index between
operations and wait for those accepted before the cut."""

from __future__ import annotations

import asyncio
import time

from raysearch.errors import Unavailable


async def wait_settled(tracker, index: str, token: str, lost: str, timeout_s: float | None = None) -> set[str]:
    """Until every operation of `index` accepted before the cut of `token` is finished;
    returns those that were waited for. Unavailable(`lost`) if the hold is gone (a tracker
    restarted meanwhile), and after `timeout_s` (None: no limit)."""
    waited: set[str] = set()
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        frozen, waiting = await tracker.settled_before(index, token)
        if not frozen:
            raise Unavailable(lost)
        if not waiting:
            return waited
        waited.update(waiting)
        if deadline is not None and time.monotonic() > deadline:
            raise Unavailable(f"operations {waiting[:5]} of {index!r} did not finish in {timeout_s:.0f} s; gave up")
        await asyncio.sleep(0.2)
