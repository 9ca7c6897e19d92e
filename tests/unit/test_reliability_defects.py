"""Issue 24's defects that plain code can show (no Ray): each of these tests failed
before its fix.

- a retried operation notifies its webhook again (Operation.take_notification);
- a failed RocksDB write leaves no phantom (numbered, live) documents;
- reads never meet a closed store (storage/gate.py);
- a readiness request given up by its client cancels nothing (serve/readiness.py).
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from raysearch.analysis.analyzer import Analyzer
from raysearch.errors import ShardUnavailable
from raysearch.index.batch import split_batch
from raysearch.index.shard_index import ShardIndex
from raysearch.ops.operation import Operation
from raysearch.search.executor import execute
from raysearch.search.plan import QueryPlan
from raysearch.serve.readiness import ReadinessProbe
from raysearch.storage.gate import ReadGate
from raysearch.status import Readiness
from raysearch.storage.kv import MemoryKV


# ------------------------------------------------------------------ webhook after retry
def test_a_retried_operation_notifies_its_webhook_again(no_ray):
    op = Operation.new("op", "idx", [3, 2], [], webhook="http://127.0.0.1:1/done")
    op.batch_indexed(0, {"0": 1}, 3, [])
    op.batch_failed(1, "boom", ["a", "b"])
    op.apply_watermarks({"0": 5})
    assert op.refresh_status().value == "partially_completed"
    assert op.take_notification()  # finished: notified once
    assert not op.take_notification()  # ... and only once
    assert op.reset_failed() == [1]
    op.refresh_status()
    assert not op.take_notification()  # running again: nothing to tell yet
    op.batch_indexed(1, {"1": 2}, 2, [])
    op.apply_watermarks({"0": 5, "1": 5})
    assert op.refresh_status().value == "completed"
    assert op.take_notification()  # finished again: notified again


def test_an_operation_without_webhook_is_never_notified(no_ray):
    op = Operation.new("op", "idx", [1], [])
    op.batch_failed(0, "boom", ["a"])
    op.refresh_status()
    assert not op.take_notification()


# ------------------------------------------------------------------ phantom documents
class _FailingKV(MemoryKV):
    """TEST ONLY: an in-memory store whose next write fails (a full disk, an I/O error)."""

    fail_next = False

    def write(self, changes):
        if self.fail_next:
            self.fail_next = False
            raise OSError(28, "No space left on device (injected)")
        super().write(changes)


def _batch(docs):
    return split_batch(docs, [], 1, Analyzer())[0][0]


def _match_all_total(shard: ShardIndex) -> int:
    return execute(shard, QueryPlan(match_all=True), 10)["total"]


def test_a_failed_write_leaves_no_phantom_documents(no_ray):
    kv = _FailingKV()
    shard = ShardIndex(kv)
    shard.apply("b1", _batch([{"id": "a", "title": "one"}, {"id": "b", "title": "two"}]))
    assert _match_all_total(shard) == 2
    kv.fail_next = True
    with pytest.raises(OSError):
        shard.apply("b2", _batch([{"id": f"new{i}", "title": "three"} for i in range(5)] + [{"id": "a", "title": "x"}]))
    assert _match_all_total(shard) == 2  # before the fix: 8 (the five new and a's new number)
    assert shard.doc_count() == 2 and shard.pending_changes() == shard.pending_changes()
    assert shard.get_document("new0") is None
    # the same batch, retried once the disk has room, is applied whole
    shard.apply("b2", _batch([{"id": f"new{i}", "title": "three"} for i in range(5)] + [{"id": "a", "title": "x"}]))
    assert _match_all_total(shard) == 7 and shard.doc_count() == 7


# ------------------------------------------------------------------ the read gate
def test_the_gate_waits_for_readers_and_turns_new_ones_away(no_ray):
    gate = ReadGate(lambda because: ShardUnavailable(f"shard {because}"))
    inside, leave, closed = threading.Event(), threading.Event(), threading.Event()

    def reader():
        with gate.reading():
            inside.set()
            leave.wait(5)

    def closer():
        with gate.shut("is being rebuilt"):
            closed.set()

    t = threading.Thread(target=reader)
    t.start()
    inside.wait(5)
    c = threading.Thread(target=closer)
    c.start()
    time.sleep(0.2)
    assert not closed.is_set()  # a read is still inside: the store is not closed under it
    with pytest.raises(ShardUnavailable, match="being rebuilt"):
        with gate.reading():
            pass
    leave.set()
    t.join(5)
    c.join(5)
    assert closed.is_set()
    with gate.reading():  # open again
        pass


def test_a_failed_rebuild_keeps_the_gate_shut_and_a_drop_never_reopens(no_ray):
    gate = ReadGate(lambda because: ShardUnavailable(because))
    with pytest.raises(RuntimeError):
        with gate.shut("is being rebuilt"):
            raise RuntimeError("MongoDB went away")
    with pytest.raises(ShardUnavailable, match="failed .*MongoDB went away"):
        with gate.reading():
            pass
    dropped = ReadGate(lambda because: ShardUnavailable(because))
    with dropped.shut("was dropped", reopen=False):
        pass
    with pytest.raises(ShardUnavailable, match="dropped"):
        with dropped.reading():
            pass


# ------------------------------------------------------------------ readiness probe
def test_readiness_requests_given_up_cancel_nothing(no_ray):
    """Requests cancelled while a slow check runs (clients with a short timeout during a
    slow start) leave the check running; the next request gets its answer."""
    started, release = [], threading.Event()

    def check():
        started.append(threading.current_thread().name)
        release.wait(10)
        return Readiness.READY, "ok"

    probe = ReadinessProbe(check, max_age_s=5.0, wait_s=10.0)

    async def scenario():
        impatient = [asyncio.ensure_future(probe.result()) for _ in range(20)]
        await asyncio.sleep(0.2)
        for task in impatient:
            task.cancel()
        await asyncio.gather(*impatient, return_exceptions=True)
        patient = asyncio.ensure_future(probe.result())
        await asyncio.sleep(0.1)
        release.set()
        return await asyncio.wait_for(patient, 5)

    assert asyncio.run(scenario()) == (Readiness.READY, "ok")
    assert started == ["readiness"]  # one check, on the probe's own thread, for all 21 requests


def test_readiness_answers_from_a_fresh_check_and_reports_failures(no_ray):
    answers = iter([(Readiness.STARTING, "actors not answering: worker 1"), (Readiness.READY, "ok")])
    calls = []

    def check():
        calls.append(1)
        answer = next(answers, None)
        if answer is None:
            raise RuntimeError("boom")
        return answer

    probe = ReadinessProbe(check, max_age_s=0.0, wait_s=5.0)
    assert asyncio.run(probe.result()) == (Readiness.STARTING, "actors not answering: worker 1")
    assert asyncio.run(probe.result()) == (Readiness.READY, "ok")
    state, reason = asyncio.run(probe.result())
    assert state is Readiness.STARTING and "RuntimeError: boom" in reason
    assert len(calls) == 3
