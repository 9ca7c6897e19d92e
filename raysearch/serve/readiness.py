"""Readiness, checked apart from the requests that ask for it.

A readiness check pings every actor. Run inside a request handler, the pings are
children of that request: when the client gives up (a Kubernetes probe waits 1 s by
default; a script's HTTP timeout during a slow start), the handler is cancelled and so
are the pings it submitted. An actor that runs its calls in order then waited for the
cancelled call's turn for good, and /readyz named healthy actors as dead for minutes
(issue 24, defect 8). So the check runs on a thread of its own (started with the
replica, never by a request), one at a time, and requests read its latest answer:

- an answer younger than `max_age_s` is returned at once;
- otherwise the request asks for a new check and waits for its answer (at most
  `wait_s`); a request cancelled meanwhile cancels nothing but its own wait.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Callable

from raysearch.status import Readiness

log = logging.getLogger("raysearch.readiness")


class ReadinessProbe:
    def __init__(self, check: Callable[[], tuple[Readiness, str]], max_age_s: float = 1.0, wait_s: float = 20.0):
        self._check = check
        self.max_age_s, self.wait_s = max_age_s, wait_s
        self._cond = threading.Condition()
        self._wanted = False
        self._answer: tuple[Readiness, str] = (Readiness.STARTING, "readiness not checked yet")
        self._answered_at = float("-inf")  # monotonic time the answer's check started
        self._running = False
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []
        self._thread = threading.Thread(target=self._run, name="readiness", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._wanted)
                self._wanted, self._running = False, True
            started = time.monotonic()
            try:
                answer = self._check()
            except Exception as exc:  # noqa: BLE001 - any failure is an answer: not ready, and why
                answer = (Readiness.STARTING, f"readiness check failed: {type(exc).__name__}: {exc}")
            with self._cond:
                self._answer, self._answered_at, self._running = answer, started, False
                waiters, self._waiters = self._waiters, []
                self._cond.notify_all()
            for loop, future in waiters:  # wake the waiting requests on their own loop
                loop.call_soon_threadsafe(_settle, future, answer)

    def _fresh(self, since: float) -> bool:
        return self._answered_at >= since

    async def result(self) -> tuple[Readiness, str]:
        """(state, reason): the latest answer if fresh, else the next check's. Waiting holds
        no thread: a request given up by its client leaves nothing behind but its future."""
        if self._fresh(time.monotonic() - self.max_age_s):
            return self._answer
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._cond:
            self._waiters.append((loop, future))
            self._wanted = not self._running  # a check under way answers this request too
            self._cond.notify_all()
        try:
            return await asyncio.wait_for(future, self.wait_s)
        except asyncio.TimeoutError:
            return Readiness.STARTING, f"readiness check still running after {self.wait_s:.0f}s"
        finally:
            if not future.done():
                with self._cond:
                    self._waiters = [w for w in self._waiters if w[1] is not future]


def _settle(future: asyncio.Future, answer: tuple[Readiness, str]) -> None:
    if not future.done():
        future.set_result(answer)
