"""Summed statistics an ingress keeps between queries, so a search can take one round.

A search needs global statistics (field lengths and document frequencies summed over
every shard) before any shard can score. Asking for them costs a round of calls to
every shard; this cache keeps what earlier rounds summed, together with the version
each shard reported for its statistics (ShardIndex.stats_version). A query whose
fields and terms are all cached is planned from it at once and sent to the shards
with those versions; a shard whose statistics have moved on answers "stale" instead
of scoring, and the ingress drops the index's cache and plans again the usual way
(two rounds). Exactness therefore never depends on the cache: a plan is only ever
scored against the very statistics it was built from.

A query with a term the cache has not seen still costs the statistics round, and the
queries people type are mostly new. So once an index's statistics have held still (two
rounds saw the same versions, a second apart), the coordinator loads each shard's whole
term dictionary at those versions in the background (ShardStore.dictionary) and installs
the sums here: from then on every query's statistics come from the cache, a term absent
from the dictionary counting 0, until a shard's version moves. Only dictionaries of up
to `dictionary_max_terms` (field, term) pairs are loaded (about 100 bytes each here).

Pure logic, no Ray. Bounded: an index's entry is dropped when its shards' versions
change (any write) or when it holds more than `max_pairs` terms.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from raysearch.search.plan import GlobalStats, StatsRequest


@dataclass
class _Entry:
    versions: list
    fields: dict[str, tuple[int, int]] = field(default_factory=dict)
    doc_freqs: dict[tuple[str, str], int] = field(default_factory=dict)
    since: float = field(default_factory=time.monotonic)  # when these versions were first seen
    # field -> term -> summed document frequency: every term of every shard at `versions`
    dictionary: dict[str, dict[str, int]] | None = None


class StatsCache:
    def __init__(self, max_pairs: int = 200_000, settle_s: float = 1.0):
        self.max_pairs = max_pairs
        self.settle_s = settle_s
        self._entries: dict[str, _Entry] = {}

    def lookup(self, index: str, req: StatsRequest) -> tuple[GlobalStats, list] | None:
        """(statistics for `req`, the shard versions they hold at) if everything is cached."""
        entry = self._entries.get(index)
        if entry is None or req.prefixes or req.fuzzy:  # expansions take their own round anyway
            return None
        if entry.dictionary is not None:  # every term is known: one absent has no documents
            dictionary = entry.dictionary
            stats = GlobalStats({f: entry.fields.get(f, (0, 0)) for f in req.fields},
                                {tuple(p): dictionary.get(p[0], {}).get(p[1], 0) for p in req.pairs}, {})
            return stats, entry.versions
        if (any(f not in entry.fields for f in req.fields)
                or any(tuple(p) not in entry.doc_freqs for p in req.pairs)):
            return None
        stats = GlobalStats({f: entry.fields[f] for f in req.fields},
                            {tuple(p): entry.doc_freqs[tuple(p)] for p in req.pairs}, {})
        return stats, entry.versions

    def store(self, index: str, versions: list, req: StatsRequest, stats: GlobalStats) -> bool:
        """Keep statistics summed from shards that reported `versions` (one per shard; None
        where a shard's statistics changed while read: then nothing is kept). True when
        the statistics have held still at these versions for `settle_s` and no dictionary
        is installed yet: worth loading one (install_dictionary)."""
        if not versions or any(v is None for v in versions):
            return False
        entry = self._entries.get(index)
        if entry is None or entry.versions != versions or len(entry.doc_freqs) > self.max_pairs:
            entry = self._entries[index] = _Entry(list(versions))
        for f in req.fields:
            entry.fields[f] = tuple(stats.fields.get(f, (0, 0)))
        for p in req.pairs:
            entry.doc_freqs[tuple(p)] = stats.doc_freqs.get(tuple(p), 0)
        return entry.dictionary is None and time.monotonic() - entry.since >= self.settle_s

    def install_dictionary(self, index: str, versions: list, fields: dict[str, tuple[int, int]],
                           dictionary: dict[str, dict[str, int]]) -> None:
        """Every field's statistics and every term's document frequency summed over the
        shards, all read at `versions` (ShardStore.dictionary)."""
        if not versions or any(v is None for v in versions):
            return
        entry = self._entries[index] = _Entry(list(versions), dict(fields))
        entry.dictionary = dictionary

    def invalidate(self, index: str) -> None:
        self._entries.pop(index, None)
