"""ingest/intake.batch_docs: an index of many shards gets larger batches, so that each
shard's part of a batch (one apply call, one RocksDB write) holds enough documents to
amortise its fixed costs; never beyond the bound a posting block allows."""

from __future__ import annotations

from raysearch.ingest.intake import MAX_BATCH_DOCS, MIN_DOCS_PER_PART, batch_docs


def test_batches_grow_with_shards_within_the_bound():
    assert batch_docs(500, 2) == 500  # the setting, as long as parts are large enough
    assert batch_docs(500, 4) == 500
    assert batch_docs(500, 8) == 8 * MIN_DOCS_PER_PART
    assert batch_docs(500, 32) == 32 * MIN_DOCS_PER_PART
    assert batch_docs(500, 64) == MAX_BATCH_DOCS
    assert batch_docs(2000, 8) == 2000  # a larger setting wins
    for shards in range(1, 80):
        size = batch_docs(500, shards)
        assert 500 <= size <= MAX_BATCH_DOCS
        assert size >= min(MAX_BATCH_DOCS, MIN_DOCS_PER_PART * shards)
