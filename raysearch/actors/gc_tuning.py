"""Python's cyclic garbage collector, tuned for the actors that allocate the most.

A ShardStore holds its statistics as millions of small objects (df keys, doc ids) and
an IndexWorker allocates lists per batch; neither makes reference cycles worth
collecting (the collector found none in a 40,000-document build). With the default
threshold of 700 allocations the collector ran about once per 1,000 documents indexed
and walked every live object each time a generation filled: 24 % of a ShardStore's busy
samples were `gc_collect_main` in benchmarks/profile_indexing.py. A higher first
threshold makes collections rare, and `freeze()` after a shard has loaded its state
moves those objects out of the collector's sight for good.
"""

from __future__ import annotations

import gc

FIRST_GENERATION_THRESHOLD = 50_000


def collect_rarely() -> None:
    _, second, third = gc.get_threshold()
    gc.set_threshold(FIRST_GENERATION_THRESHOLD, second, third)


def freeze_loaded_state() -> None:
    """After a large load: what exists now is permanent for the collector (never scanned).
    No collection first: it would walk the whole load once, on the path to ready."""
    gc.freeze()
