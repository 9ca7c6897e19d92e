"""When a shard's MongoDB log is compacted (index/compaction.py, compaction_due): pure, no Ray."""

from __future__ import annotations

from raysearch.config import Settings
from raysearch.index.compaction import compaction_due

S = Settings(data_dir="/nonexistent", compact_garbage_ratio=0.05, compact_busy_garbage_ratio=0.5,
             compact_idle_s=10, compact_min_garbage_bytes=1 << 20, compact_min_entries=100_000, compact_ratio=1.0)
LIVE = 100 << 20  # bytes of the compacted generation


def due(garbage: int, idle_s: float, new: int = 1_000, live_entries: int = 1_000_000) -> bool:
    return compaction_due(S, new, garbage, live_entries, LIVE, idle_s)


def test_while_writes_go_on_history_must_reach_half_the_live_bytes():
    assert not due(int(0.06 * LIVE), idle_s=0.5)
    assert not due(int(0.49 * LIVE), idle_s=9.9)
    assert due(int(0.5 * LIVE), idle_s=0.5)


def test_once_the_log_is_still_a_twentieth_is_enough():
    assert due(int(0.06 * LIVE), idle_s=10)
    assert not due(int(0.04 * LIVE), idle_s=3600)


def test_never_for_less_than_the_minimum_bytes():
    assert not compaction_due(S, 10, (1 << 20) - 1, 10, 1_000, idle_s=3600)
    assert compaction_due(S, 10, 1 << 20, 10, 1_000, idle_s=3600)


def test_pure_growth_as_large_as_the_live_state_busy_or_not():
    assert due(0, idle_s=0, new=1_000_000)
    assert not due(0, idle_s=3600, new=999_999)
    assert not compaction_due(S, 99_999, 0, 0, 0, idle_s=0)  # a first generation: at least the minimum
    assert compaction_due(S, 100_000, 0, 0, 0, idle_s=0)


def test_a_busy_ratio_below_the_idle_one_never_delays():
    low = S.model_copy(update={"compact_busy_garbage_ratio": 0.01})
    assert not compaction_due(low, 10, int(0.04 * LIVE), 10, LIVE, idle_s=0)
    assert compaction_due(low, 10, int(0.05 * LIVE), 10, LIVE, idle_s=0)
