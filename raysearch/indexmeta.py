"""An index's record in MongoDB (`indexes` collection), read and checked in one place.

Every place that walks all indexes (readiness, stats, listing, the persistence
drain, workers) reads records through `parse`, so a corrupt or unreadable record
(written by hand, by an older version, half-restored) is an error naming that
index — `CorruptIndex`, a 503 for requests to it — and never stops the others.
"""

from __future__ import annotations

from raysearch.analysis.analyzer import Analyzer
from raysearch.errors import RaySearchError
from raysearch.models import IndexSettings


class CorruptIndex(RaySearchError):
    status = 503
    type = "index_corrupt"

    def __init__(self, name, problem: str):
        super().__init__(f"index {name!r} has an unreadable record in MongoDB ({problem}); "
                         f"fix it or delete the index (DELETE /indexes/{name})")
        self.index = name


def parse(meta: dict) -> tuple[IndexSettings, Analyzer, int]:
    """-> (settings, analyzer, shard count) of an index record, or CorruptIndex naming the problem."""
    name = meta.get("_id") if isinstance(meta, dict) else None
    try:
        raw = meta["settings"]
        if not isinstance(raw, dict):
            raise TypeError(f"'settings' is {type(raw).__name__}, not an object")
        settings = IndexSettings.from_record(raw)
        shards = meta["shards"]
        if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= 256:
            raise ValueError(f"'shards' is {str(shards)[:40]!r}, not a number 1-256")
        analyzer = Analyzer(settings.analyzer)
    except CorruptIndex:
        raise
    except Exception as exc:  # any shape of garbage: name the index and the problem
        raise CorruptIndex(name, f"{type(exc).__name__}: {str(exc)[:300]}") from None
    return settings, analyzer, shards


def build(settings: IndexSettings) -> Analyzer:
    """Everything derived from new settings, built before they are stored (ValueError if it cannot be)."""
    return Analyzer(settings.analyzer)
