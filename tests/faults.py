"""TEST ONLY: fault injection at the actor boundary (production code has no test switches).

`faulty_workers(settings, ...)` replaces every named IndexWorker (`raysearch:worker:{i}`)
for the duration of a `with` block by a subclass that fails on chosen input, then
restarts the tracker so that its worker pool resolves the names again; on exit the
real workers come back the same way. The ingress resolves workers by name where a
stale handle would matter (readiness, delete), so it follows along.

  analysis_fails_on="MARKER"        the analyzer raises on any text containing MARKER:
                                    production's per-document isolation (index/batch.py)
                                    must fail that document alone, with its reason
  batch_fails_until=("MARKER", path) index_batch raises for a batch holding a document whose
                                    text contains MARKER, until the file `path` exists
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager

import ray
from ray import cloudpickle

from raysearch.actors import registry
from raysearch.actors.index_worker import IndexWorker
from raysearch.config import NAMESPACE, Settings
from raysearch.index.batch import decode_payload

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray's workers cannot import `tests`

INJECTED = "injected fault (tests/faults.py)"


class _FailingAnalyzer:
    """Delegates to the real analyzer; raises on text holding the marker."""

    def __init__(self, real, marker: str):
        self._real, self._marker = real, marker

    def _check(self, text: str) -> None:
        if self._marker in text:
            raise ValueError(f"{INJECTED}: analysis of text with {self._marker!r}")

    def normalized(self, text: str):
        self._check(text)
        return self._real.normalized(text)

    def batch_token_ids(self, texts):  # what the IndexWorkers' batch build calls (index/batch_postings.py)
        for text in texts:
            self._check(text)
        return self._real.batch_token_ids(texts)

    def __getattr__(self, name):
        return getattr(self._real, name)


class FaultyIndexWorker(IndexWorker.__ray_actor_class__):
    def __init__(self, settings: Settings, analysis_fails_on: str | None = None,
                 batch_fails_until: tuple[str, str] | None = None):
        super().__init__(settings)
        self.analysis_fails_on = analysis_fails_on
        self.batch_fails_until = batch_fails_until

    def _index(self, index: str):
        analyzer, *rest = super()._index(index)
        if self.analysis_fails_on and not isinstance(analyzer, _FailingAnalyzer):
            analyzer = _FailingAnalyzer(analyzer, self.analysis_fails_on)
            self._indexes[index] = (analyzer, *rest)
        return (analyzer, *rest)

    def index_batch(self, index: str, op_id: str, batch: int) -> dict:
        if self.batch_fails_until:
            marker, path = self.batch_fails_until
            raw = self.mongo.get_batch(op_id, batch)
            docs = decode_payload(raw)[0] if raw else []
            if not os.path.exists(path) and any(marker in str(d) for d in docs):
                raise RuntimeError(f"{INJECTED}: batch with {marker!r} fails until {path} exists")
        return super().index_batch(index, op_id, batch)

    def injected(self) -> bool:
        return True


def _replace(name: str, create) -> None:
    """Kill the named actor for good, wait for its name to be free, create the replacement."""
    try:
        ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)
    except ValueError:
        pass
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            ray.get_actor(name, namespace=NAMESPACE)
            time.sleep(0.1)
        except ValueError:
            break
    handle = create()
    ray.get(handle.ping.remote(), timeout=120)


def _restart_tracker() -> None:
    """The tracker keeps worker handles in its pool: a restart makes it resolve the names again."""
    tracker = ray.get_actor(registry.TRACKER, namespace=NAMESPACE)
    old = ray.get(tracker.pid.remote(), timeout=60)
    ray.kill(tracker, no_restart=False)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if ray.get(tracker.pid.remote(), timeout=30) != old and ray.get(tracker.ping.remote(), timeout=30):
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise AssertionError("the tracker did not come back")


@contextmanager
def faulty_workers(settings: Settings, **faults):
    faulty = ray.remote(concurrency_groups={"control": 1})(FaultyIndexWorker)  # as IndexWorker declares
    names = [registry.worker_name(i) for i in range(settings.workers)]
    try:
        for i, name in enumerate(names):
            _replace(name, lambda i=i: faulty.options(**registry.worker_options(i)).remote(settings, **faults))
        _restart_tracker()
        yield
    finally:
        for i, name in enumerate(names):
            _replace(name, lambda i=i: registry.worker(settings, i))
        _restart_tracker()
