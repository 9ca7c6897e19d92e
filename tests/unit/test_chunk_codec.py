"""storage/chunk_store.py: a chunk payload compressed in the shard (compress_chunks) is
stored as the writer would have compressed it, and one in another codec is refused, never
stored as zstd (pure: no MongoDB)."""

from __future__ import annotations

import pytest
import zstandard

from raysearch.storage.chunk_store import CODEC, _compressed, compress_chunks


def test_a_payload_compressed_in_the_shard_is_stored_as_the_writer_would_store_it():
    raw = [(3, 7, b"key\x00value" * 50), (1, 0, b"")]
    made = compress_chunks(raw)
    assert [(n, p) for n, p, _, _ in made] == [(3, 7), (1, 0)] and all(c == CODEC for *_, c in made)
    for raw_blob, shipped in zip(raw, made):
        assert _compressed(shipped) == _compressed(raw_blob)  # the same stored bytes either way
        assert zstandard.ZstdDecompressor().decompress(_compressed(shipped)) == raw_blob[2]
    assert len(made[0][2]) < len(raw[0][2])


def test_a_payload_in_another_codec_is_refused():
    with pytest.raises(ValueError, match="codec 'gzip'"):
        _compressed((1, 1, b"x", "gzip"))
