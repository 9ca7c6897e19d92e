import pytest

from raysearch.errors import InvalidRequest
from raysearch.ops import book
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
    op = book.new_operation("op", "idx", [150, 50], [{"position": 3, "id": None, "reason": "bad"}])
    assert op["status"] == "indexing"
    assert book.batch_indexed(op, 0, {0: 5, 1: 3}, 150, [])
    assert not book.batch_indexed(op, 0, {0: 5, 1: 3}, 150, [])  # replayed report: no change
    book.batch_indexed(op, 1, {1: 4}, 49, [{"id": "x", "reason": "poison"}])
    assert book.refresh_status(op, {}) == "persisting"
    assert book.apply_watermarks(op, {"0": 5, "1": 3}) == [0]
    assert book.apply_watermarks(op, {"0": 5, "1": 4}) == [1]
    assert book.refresh_status(op, {}) == "partially_completed"
    view = book.public_view(op)
    assert view["documents"] == {"total": 201, "indexed": 199, "failed": 2}
    assert view["batches"] == {"total": 2, "indexed": 2, "persisted": 2, "failed": 0}


def test_operation_status_is_typed(no_ray):
    from raysearch.ops.status import ACTIVE, TERMINAL, OperationStatus

    assert ACTIVE | TERMINAL == set(OperationStatus) and not ACTIVE & TERMINAL
    op = book.new_operation("op", "idx", [1], [])
    assert op["status"] == "indexing" and type(op["status"]) is str  # stored and sent as the plain string
    assert book.status_of(op) is OperationStatus.INDEXING and not book.is_terminal(op)
    assert book.batch_counts(op) == (1, 0)
    book.batch_indexed(op, 0, {0: 1}, 1, [])
    assert book.refresh_status(op, {}) is OperationStatus.PERSISTING and book.batch_counts(op) == (0, 1)
    book.apply_watermarks(op, {"0": 1})
    assert book.refresh_status(op, {}) is OperationStatus.COMPLETED and book.is_terminal(op)
    assert type(op["status"]) is str and type(book.public_view(op)["status"]) is str
    assert book.public_view(op)["status"] == "completed"


def test_operation_cursor_round_trip(no_ray):
    for created_at, op_id in ((1764000000.123456, "abc"), (0.0, "a:b/c=d"), (1.5, "")):
        assert book.decode_cursor(book.encode_cursor(created_at, op_id)) == (created_at, op_id)
    for bad in ("", "x", "bm90IGpzb24", book.encode_cursor(1.0, "a")[:-3] + "!!", "WyJhIiwiYiJd"):
        with pytest.raises(ValueError):
            book.decode_cursor(bad)


def test_persistable_matches_apply_watermarks(no_ray):
    op = book.new_operation("op", "idx", [1, 1], [])
    book.batch_indexed(op, 0, {0: 5, 1: 3}, 1, [])
    book.batch_indexed(op, 1, {1: 9}, 1, [])
    assert not book.persistable(op, {"0": 4, "1": 3})
    assert book.persistable(op, {"0": 5, "1": 3})
    assert book.apply_watermarks(op, {"0": 5, "1": 3}) == [0]
    assert not book.persistable(op, {"0": 5, "1": 3}) and book.persistable(op, {"1": 9})
