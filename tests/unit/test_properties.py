"""Property tests (hypothesis): no crash on any Unicode, encodings round-trip."""

from array import array

from hypothesis import given, settings, strategies as st

from raysearch.analysis.analyzer import Analyzer, analyze_document

from raysearch.index.encoding import block_postings, decode_entries, encode_block, encode_entries
from raysearch.search.query import parse_query


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_analyzer_never_crashes_and_positions_increase(text):
    tokens = list(Analyzer().tokens(text))
    positions = [p for _, p in tokens]
    assert positions == sorted(set(positions))
    assert all(t and "\x00" not in t for t, _ in tokens)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_query_parser_is_lenient_on_any_input(text):
    clauses = parse_query(text, {"title", "body"}.__contains__)
    assert all(c.text for c in clauses)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=50), max_size=5))
def test_documents_of_any_strings_analyze(doc):
    for field in analyze_document(doc, Analyzer()):
        assert field.length == sum(len(p) for p in field.postings.values())


@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=20)),
                max_size=30))
def test_block_round_trip(rows):
    block = encode_block(array("I", range(len(rows))), array("I", [len(p) for _, p in rows]),
                         array("I", [dl for dl, _ in rows]), array("I", [x for _, p in rows for x in p]))
    assert block_postings(block, 7) == [(7 + i, len(p), dl, p) for i, (dl, p) in enumerate(rows)]


@given(st.lists(st.tuples(st.binary(max_size=30), st.one_of(st.none(), st.binary(max_size=30))), max_size=30))
def test_entries_round_trip(entries):
    assert decode_entries(encode_entries(entries)) == entries
