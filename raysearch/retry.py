"""The one way to wait and try again: exponential backoff with a cap.

Every retry in raysearch (a batch on a worker, a checkpoint while MongoDB is away, a
webhook, the drain, a shard's restore, a Ray Data write) takes its delays from
`Backoff`, and the loops that only wait out an outage use `wait_out` / `wait_out_async`.
Why not tenacity or stamina: each loop here differs in what it counts as an attempt
(a MongoDB outage never uses one up) and what it does between tries (log, record the
last error for /readyz), which their decorators express less plainly than a 40-line
module; the delays themselves are this small generator.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterator, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    base: float = 0.5  # the first delay, seconds
    cap: float = 5.0  # no delay is longer
    factor: float = 2.0

    def delays(self) -> Iterator[float]:
        delay = self.base
        while True:
            yield min(delay, self.cap)
            delay = min(delay * self.factor, self.cap)

    def delay(self, attempt: int) -> float:
        """The delay after failed attempt `attempt` (0-based)."""
        return min(self.base * self.factor ** attempt, self.cap)


def wait_out(call: Callable[[], T], transient: Callable[[BaseException], bool], backoff: Backoff,
             log: logging.Logger | None = None, what: str = "") -> T:
    """Blocking: call until it returns, sleeping between failures `transient` accepts (an
    outage); any other failure is raised at once."""
    for delay in backoff.delays():
        try:
            return call()
        except Exception as exc:
            if not transient(exc):
                raise
            if log is not None:
                log.warning("%s waits: %s", what or "call", exc)
            time.sleep(delay)
    raise AssertionError("unreachable")


async def wait_out_async(call: Callable[[], Awaitable[T]], transient: Callable[[BaseException], bool],
                         backoff: Backoff, log: logging.Logger | None = None, what: str = "") -> T:
    """As wait_out, for a coroutine function."""
    for delay in backoff.delays():
        try:
            return await call()
        except Exception as exc:
            if not transient(exc):
                raise
            if log is not None:
                log.warning("%s waits: %s", what or "call", exc)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")
