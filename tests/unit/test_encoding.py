from array import array

from raysearch.index import keys as K

from raysearch.index.encoding import (block_keeping, blocks_keeping, block_postings, block_size, columnar_weights, dead_in_blocks,
                                      decode_entries, encode_block, encode_columns, encode_entries,
                                      split_columnar)


def _block(rows):
    """rows: [(relative doc number, field length, positions)]."""
    return encode_block(array("I", [r[0] for r in rows]), array("I", [len(r[2]) for r in rows]),
                        array("I", [r[1] for r in rows]), array("I", [p for r in rows for p in r[2]]))


def test_block_round_trip_and_removal(no_ray):
    block = _block([(0, 17, [0, 5, 9]), (2, 4, [1]), (3, 8, [2, 3])])
    assert block_size(block) == 3
    assert block_postings(block, 10) == [(10, 3, 17, [0, 5, 9]), (12, 1, 4, [1]), (13, 2, 8, [2, 3])]
    import numpy as np

    def live(*dead, size=8):
        mask = np.ones(size, dtype=bool)
        mask[list(dead)] = False
        return mask

    assert block_postings(block_keeping(block, live(2)), 10) == [(10, 3, 17, [0, 5, 9]), (13, 2, 8, [2, 3])]
    assert block_keeping(block, live(7)) is block  # nothing of this block dead: the same bytes
    assert block_keeping(_block([(5, 1, [0])]), live(5)) is None
    assert block_postings(block_keeping(block, live(3, 0)), 10) == [(12, 1, 4, [1])]
    assert block_keeping(block, live(0, 2, 3)) is None
    assert block_keeping(block, live(0, 2, 3, 5, 6)) is None
    # many blocks at once: postings and dead postings of each
    other, lone = _block([(1, 2, [0]), (5, 3, [1, 2])]), _block([(7, 1, [0])])
    sizes, dead = dead_in_blocks([block, other, lone], live(2, 5, 7))
    assert sizes.tolist() == [3, 2, 1] and dead.tolist() == [1, 1, 1]
    assert dead_in_blocks([block, lone], live())[1].tolist() == [0, 0]
    assert dead_in_blocks([], live())[0].tolist() == []


def test_chunks_count_postings_of_blocks(no_ray):
    keys = [b"P" + bytes([i]) for i in range(6)] + [b"Dx", b"Tx"]
    values = [_block([(d, 1, [0]) for d in range(1000)])] * 6 + [b"{}", None]
    blob = encode_columns(keys, values)
    weights = columnar_weights(blob, ord("P"))
    assert weights.tolist() == [1000] * 6 + [1, 1]
    chunks = split_columnar(blob, 5000, weights=weights)
    assert [(n, w) for n, w, _ in chunks] == [(5, 5000), (3, 1002)]
    assert [e for _, _, c in chunks for e in decode_entries(c)] == list(zip(keys, values))


def test_entries_round_trip_with_deletes(no_ray):
    entries = [(b"Pa\x00b\x00c", b"\x01\x02"), (b"Dx", None), (b"N", b"")]
    assert decode_entries(encode_entries(entries)) == entries


def test_keys_sort_and_split(no_ray):
    key = K.block_key(K.term_prefix("title", "ray"), K.opstamp_bytes(256))  # an opstamp with a NUL byte in it
    assert key.startswith(K.term_prefix("title", "ray"))
    assert K.split_block_key(key) == ("title", "ray", 256)
    assert K.upper_bound(K.term_prefix("title", "ray")) > key
    assert not K.block_key(K.term_prefix("title", "ra"), K.opstamp_bytes(1)).startswith(K.term_prefix("title", "ray"))
    assert K.block_key(K.term_prefix("t", "x"), K.opstamp_bytes(2)) < K.block_key(K.term_prefix("t", "x"), K.opstamp_bytes(10))
    assert K.split_change_log_key(K.change_log_key(7, b"Dx")) == (7, b"Dx")
    assert K.change_log_key(2, b"z") < K.change_log_key(10, b"a")


def test_columnar_chunks_round_trip_and_bounds(no_ray):
    keys = [f"k{i}".encode() for i in range(12_001)]
    values = [None if i % 7 == 0 else b"v" * (i % 50) for i in range(12_001)]
    chunks = split_columnar(encode_columns(keys, values), 5000)
    assert [(n, w) for n, w, _ in chunks] == [(5000, 5000), (5000, 5000), (2001, 2001)]
    assert [e for _, _, blob in chunks for e in decode_entries(blob)] == list(zip(keys, values))
    big = split_columnar(encode_columns([b"a", b"b", b"c"], [b"x" * 600, b"y" * 600, b"z"]), 5000, max_bytes=1000)
    assert [n for n, _, _ in big] == [1, 2]
    assert [e for _, _, blob in big for e in decode_entries(blob)] == [(b"a", b"x" * 600), (b"b", b"y" * 600), (b"c", b"z")]


def test_blocks_columns_reads_many_blocks_as_block_columns_reads_each():
    """One term's blocks of many batches, decoded at once, equal decoding each block and
    offsetting its numbers by its batch's base (posting_arrays' read of a common term)."""
    import numpy as np

    from raysearch.index.encoding import block_columns, blocks_columns, encode_block

    rng = np.random.default_rng(3)
    for count in (0, 1, 2, 37):
        blocks, bases, expected = [], [], ([], [], [])
        for b in range(count):
            n = int(rng.integers(1, 9))
            docs = sorted(rng.choice(500, size=n, replace=False).tolist())
            tfs = rng.integers(1, 4, size=n).tolist()
            lengths = [int(rng.integers(tf, 60)) for tf in tfs]
            positions = [p for tf in tfs for p in sorted(rng.choice(60, size=tf, replace=False).tolist())]
            block = encode_block(array("I", docs), array("I", tfs), array("I", lengths), array("I", positions))
            base = 1000 * b + int(rng.integers(0, 50))
            blocks.append(block)
            bases.append(base)
            docs, tfs, lengths, _ = block_columns(block)
            expected[0].extend((docs.astype(np.int64) + base).tolist())
            expected[1].extend(tfs.tolist())
            expected[2].extend(lengths.tolist())
        numbers, tfs, lengths = blocks_columns(blocks, bases)
        assert numbers.dtype == np.int64 and tfs.dtype == lengths.dtype == np.float64
        assert (numbers.tolist(), tfs.tolist(), lengths.tolist()) == expected


def test_blocks_keeping_equals_block_keeping_block_by_block():
    """A purge rewrites a batch's mixed blocks in one pass (blocks_keeping); each result must
    be the block `block_keeping` makes alone: the same bytes, None when nothing is left, the
    very block when nothing leaves."""
    import random

    import numpy as np

    rng = random.Random(11)
    for _ in range(300):
        blocks = []
        for _ in range(rng.randrange(0, 15)):
            docs = sorted(rng.sample(range(60), rng.randrange(1, 9)))
            blocks.append(_block([(d, rng.randrange(1, 99), sorted(rng.sample(range(400), rng.randrange(1, 5))))
                                  for d in docs]))
        live = np.array([rng.random() < 0.6 for _ in range(60)])
        got = blocks_keeping(blocks, live)
        assert got == [block_keeping(b, live) for b in blocks]
        assert all(g is b for g, b in zip(got, blocks) if g == b)
