"""raysearch/actors/traffic.py: counts of calls and bytes, summed over actors and taken
between two snapshots (pure, no Ray)."""

from __future__ import annotations

from raysearch.actors.traffic import Traffic, combined, difference


def test_counts_sum_over_actors_and_differ_between_snapshots():
    one, two = Traffic(), Traffic()
    one.call("apply")
    before = combined([one.snapshot(), two.snapshot()])
    one.call("apply")
    two.call("apply")
    two.call("collect_changes")
    one.send("shard 0", 100)
    two.receive("workers", 40)
    after = combined([one.snapshot(), two.snapshot()])
    assert after["calls"] == {"apply": 3, "collect_changes": 1}
    assert difference(after, before) == {"calls": {"apply": 2, "collect_changes": 1}, "sent": {"shard 0": 100},
                                         "received": {"workers": 40}}
    assert difference(after, after) == {"calls": {}, "sent": {}, "received": {}}
