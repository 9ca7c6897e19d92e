"""What an actor was asked and what it moved: calls received per method, and bytes sent to
or received from each peer actor. Pure (no Ray).

Why: a cluster's ceiling is set by what each batch costs the singletons and the network,
not by timings on one machine. Counts are deterministic where timings are not, so a test
can hold the number of calls a batch makes (tests/integration/test_calls_per_batch.py),
and the cluster benchmark (benchmarks/cluster.py) reports calls per batch and the bytes
that crossed between nodes from them. Each actor keeps one `Traffic` and answers it from
its `traffic()` method; a counter is a dict increment, nothing on the hot path allocates.
"""

from __future__ import annotations

from collections import Counter


class Traffic:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()  # peer actor name -> bytes sent to it
        self.received: Counter[str] = Counter()  # peer actor name -> bytes received from it

    def call(self, method: str) -> None:
        self.calls[method] += 1

    def send(self, peer: str, nbytes: int) -> None:
        self.sent[peer] += nbytes

    def receive(self, peer: str, nbytes: int) -> None:
        self.received[peer] += nbytes

    def snapshot(self) -> dict:
        return {"calls": dict(self.calls), "sent": dict(self.sent), "received": dict(self.received)}


def combined(snapshots: list[dict]) -> dict:
    """The sum of several actors' snapshots (calls per method, bytes per peer)."""
    out = {"calls": Counter(), "sent": Counter(), "received": Counter()}
    for snap in snapshots:
        for part in out:
            out[part].update(snap.get(part, {}))
    return {part: dict(counts) for part, counts in out.items()}


def difference(after: dict, before: dict) -> dict:
    """What happened between two snapshots of one actor (or two `combined` ones)."""
    out = {}
    for part in ("calls", "sent", "received"):
        delta = Counter(after.get(part, {}))
        delta.subtract(before.get(part, {}))
        out[part] = {key: value for key, value in delta.items() if value}
    return out
