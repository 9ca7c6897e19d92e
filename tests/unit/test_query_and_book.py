import pytest

from raysearch.errors import InvalidRequest
from raysearch import models
from raysearch.ops import paging
from raysearch.ops.operation import BatchState, Operation
from raysearch.status import OperationStatus
from raysearch.search.query import MUST, MUST_NOT, PHRASE, PREFIX, SHOULD, TERM, Clause, parse_query

FIELDS = {"title", "body"}.__contains__


def test_query_syntax(no_ray):
    assert parse_query('+a -b "c d" title:e f* body:"g h"', FIELDS) == [
        Clause(MUST, TERM, "a"), Clause(MUST_NOT, TERM, "b"), Clause(SHOULD, PHRASE, "c d"),
        Clause(SHOULD, TERM, "e", "title"), Clause(SHOULD, PREFIX, "f"), Clause(SHOULD, PHRASE, "g h", "body"),
    ]


def test_malformed_parts_are_plain_words(no_ray):
    assert parse_query('what: is "this - + x', FIELDS) == [
        Clause(SHOULD, TERM, "what:"), Clause(SHOULD, TERM, "is"), Clause(SHOULD, TERM, "this"), Clause(SHOULD, TERM, "x"),
    ]


def test_too_many_clauses(no_ray):
    with pytest.raises(InvalidRequest):
        parse_query("a " * 1100, FIELDS, max_clauses=1024)


def test_operation_lifecycle(no_ray):
    op = Operation.new("op", "idx", [150, 50], [{"position": 3, "id": None, "reason": "bad"}])
    assert op.status == "indexing"
    assert op.batch_indexed(0, {0: 5, 1: 3}, 150, [])
    assert not op.batch_indexed(0, {0: 5, 1: 3}, 150, [])  # replayed report: no change
    op.batch_indexed(1, {1: 4}, 49, [{"id": "x", "reason": "poison"}])
    assert op.refresh_status() == "persisting"
    assert op.apply_watermarks({"0": 5, "1": 3}) == [0]
    assert op.apply_watermarks({"0": 5, "1": 4}) == [1]
    assert op.refresh_status() == "partially_completed"
    view = op.view()
    assert view["documents"] == {"total": 201, "indexed": 199, "failed": 2}
    assert view["batches"] == {"total": 2, "indexed": 2, "persisted": 2, "failed": 0}
    assert models.Operation(**view).status is OperationStatus.PARTIALLY_COMPLETED  # one view model


def test_operation_status_is_typed(no_ray):
    from raysearch.status import ACTIVE, TERMINAL

    assert ACTIVE | TERMINAL == set(OperationStatus) and not ACTIVE & TERMINAL
    op = Operation.new("op", "idx", [1], [])
    assert op.status is OperationStatus.INDEXING and not op.terminal
    assert op.batch_state == [BatchState.PENDING] and op.counts() == (1, 0)
    op.batch_indexed(0, {0: 1}, 1, [])
    assert op.refresh_status() is OperationStatus.PERSISTING and op.counts() == (0, 1)
    op.apply_watermarks({"0": 1})
    assert op.refresh_status() is OperationStatus.COMPLETED and op.terminal
    doc = op.to_doc()  # the checkpoint and the view carry the plain strings
    assert type(doc["status"]) is str and doc["batch_state"] == ["persisted"]
    assert type(op.view()["status"]) is str and op.view()["status"] == "completed"


def test_a_checkpoint_round_trips_and_old_ones_still_read(no_ray):
    op = Operation.new("op", "idx", [2, 3], [], webhook="http://127.0.0.1/x")
    op.batch_indexed(0, {"1": 7}, 2, [])
    op.batch_failed(1, "boom", ["a", "b"])
    op.refresh_status()
    assert Operation.from_doc(op.to_doc()) == op
    old = {**op.to_doc(), "_notified": True}  # written before the flag had a public name
    del old["notified"]
    assert Operation.from_doc(old).notified


def test_operation_cursor_round_trip(no_ray):
    for created_at, op_id in ((1764000000.123456, "abc"), (0.0, "a:b/c=d"), (1.5, "")):
        assert paging.decode_cursor(paging.encode_cursor(created_at, op_id)) == (created_at, op_id)
    for bad in ("", "x", "bm90IGpzb24", paging.encode_cursor(1.0, "a")[:-3] + "!!", "WyJhIiwiYiJd"):
        with pytest.raises(ValueError):
            paging.decode_cursor(bad)


def test_persistable_matches_apply_watermarks(no_ray):
    op = Operation.new("op", "idx", [1, 1], [])
    op.batch_indexed(0, {0: 5, 1: 3}, 1, [])
    op.batch_indexed(1, {1: 9}, 1, [])
    assert not op.persistable({"0": 4, "1": 3})
    assert op.persistable({"0": 5, "1": 3})
    assert op.apply_watermarks({"0": 5, "1": 3}) == [0]
    assert not op.persistable({"0": 5, "1": 3}) and op.persistable({"1": 9})
