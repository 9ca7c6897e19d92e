from raysearch.index import keys as K
from raysearch.index.encoding import (decode_entries, decode_posting, encode_entries,
                                      encode_posting)


def test_posting_round_trip(no_ray):
    assert decode_posting(encode_posting(3, 17, [0, 5, 9])) == (3, 17, [0, 5, 9])


def test_entries_round_trip_with_deletes(no_ray):
    entries = [(b"Pa\x00b\x00c", b"\x01\x02"), (b"Dx", None), (b"N", b"")]
    assert decode_entries(encode_entries(entries)) == entries


def test_keys_sort_and_split(no_ray):
    key = K.posting_key("title", "ray", "doc-1")
    assert key.startswith(K.term_prefix("title", "ray"))
    assert K.split_posting_key(key) == ("title", "ray", "doc-1")
    assert K.upper_bound(K.term_prefix("title", "ray")) > key
    assert K.split_change_log_key(K.change_log_key(7, b"Dx")) == (7, b"Dx")
    assert K.change_log_key(2, b"z") < K.change_log_key(10, b"a")


def test_columnar_chunks_round_trip_and_bounds(no_ray):
    from raysearch.index.encoding import encode_columns, split_columnar

    keys = [f"k{i}".encode() for i in range(12_001)]
    values = [None if i % 7 == 0 else b"v" * (i % 50) for i in range(12_001)]
    chunks = split_columnar(encode_columns(keys, values), 5000)
    assert [n for n, _ in chunks] == [5000, 5000, 2001]
    assert [e for _, blob in chunks for e in decode_entries(blob)] == list(zip(keys, values))
    big = split_columnar(encode_columns([b"a", b"b", b"c"], [b"x" * 600, b"y" * 600, b"z"]), 5000, max_bytes=1000)
    assert [n for n, _ in big] == [1, 2]
    assert [e for _, blob in big for e in decode_entries(blob)] == [(b"a", b"x" * 600), (b"b", b"y" * 600), (b"c", b"z")]
