"""Compaction of a shard's MongoDB chunk log (pure): replay, keep the live entries, re-cut.

Like a Kafka compacted topic or a Lucene merge: the chunks of one shard, replayed
in order, leave one value per live key; superseded values and deletions (of
re-indexed or deleted documents) go, and the live entries are cut again into
full chunks, sorted by key. The MongoDB side (storage/mongo.py) writes them as a
new generation and switches to it with one single-document write.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from raysearch.index import keys as K
from raysearch.index.encoding import columnar_weights, decode_entries, encode_columns, split_columnar


def live_state(blobs: Iterable[bytes]) -> dict[bytes, bytes]:
    """key -> value after replaying chunk payloads in order (deletions drop keys)."""
    state: dict[bytes, bytes] = {}
    for blob in blobs:
        for key, value in decode_entries(blob):
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
    return state


def cut_chunks(state: dict[bytes, bytes], max_postings: int,
               group: int = 50_000) -> Iterator[tuple[int, int, bytes]]:
    """The live entries, sorted by key, as chunk payloads (entries, postings, blob) of at
    most `max_postings` postings each (a posting block counts its postings)."""
    keys = sorted(state)
    for start in range(0, len(keys), group):
        part = keys[start : start + group]
        blob = encode_columns(part, [state[k] for k in part])
        yield from split_columnar(blob, max_postings, weights=columnar_weights(blob, K.POSTING[0]))
