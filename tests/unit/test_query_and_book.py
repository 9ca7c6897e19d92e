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
