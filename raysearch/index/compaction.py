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


def compaction_due(settings, new_entries: int, garbage: int, live_entries: int, live_bytes: int,
                   idle_s: float) -> bool:
    """Whether a shard's log is worth rewriting into a new generation (`settings`: config.Settings):
    when it holds history (values its entries superseded: updates and deletes) worth
    `compact_garbage_ratio` of the live bytes once the log has had no new chunk for
    `compact_idle_s`, or worth `compact_busy_garbage_ratio` of them while it grows; or when
    it has grown as large as the live state (pure growth: a restore replays at most twice
    the live data).

    Why two ratios: a compaction rewrites the shard's whole live state, so under a stream of
    updates a compaction every 5 % of history rewrote the live state once for every
    twentieth of it updated (benchmarks/README.md, "Ingest and updates, continued"); at
    50 % it is twice per full turnover, and MongoDB stays within 1.5 times the live size meanwhile."""
    s = settings
    idle = idle_s >= s.compact_idle_s
    ratio = s.compact_garbage_ratio if idle else max(s.compact_garbage_ratio, s.compact_busy_garbage_ratio)
    if garbage >= max(s.compact_min_garbage_bytes, ratio * live_bytes):
        return True
    return new_entries >= s.compact_min_entries and new_entries >= s.compact_ratio * live_entries


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


def replay_into(kv, blobs: Iterable[bytes], group: int = 20_000) -> int:
    """Replay chunk payloads in order into a KV store (puts, and deletes for removals):
    the live state on disk instead of in memory. Returns the entries replayed."""
    changes: dict[bytes, bytes | None] = {}
    count = 0
    for blob in blobs:
        for key, value in decode_entries(blob):
            changes[key] = value
            count += 1
            if len(changes) >= group:
                kv.write(changes)
                changes = {}
    if changes:
        kv.write(changes)
    return count


def cut_sorted(items: Iterable[tuple[bytes, bytes]], max_postings: int,
               group: int = 50_000) -> Iterator[tuple[int, int, bytes]]:
    """Live entries, from (key, value) pairs in key order (a scan of the store the chunks
    were replayed into), as chunk payloads (entries, postings, blob) of at most
    `max_postings` postings each (a posting block counts its postings). Holds `group`
    entries at a time, never the whole state."""
    keys: list[bytes] = []
    values: list[bytes] = []

    def flush():
        blob = encode_columns(keys, values)
        return split_columnar(blob, max_postings, weights=columnar_weights(blob, K.POSTING[0]))

    for key, value in items:
        keys.append(key)
        values.append(value)
        if len(keys) >= group:
            yield from flush()
            keys, values = [], []
    if keys:
        yield from flush()
