"""Every actor kind's get-or-create helper and lookup, in one place for the code above
the actors (the ingress, the runner, drivers, tests). Actors themselves import
`names` and the modules of the actors they call, never this module."""

from __future__ import annotations

from raysearch.actors.index_worker import worker, worker_options, workers
from raysearch.actors.names import (PERSISTENCE, SERIAL, TRACKER, all_shard_names, find, options, shard_name,
                                    shard_names_of, worker_name)
from raysearch.actors.persistence import persistence
from raysearch.actors.shard_store import shard, shards
from raysearch.actors.tracker import tracker

__all__ = ["PERSISTENCE", "SERIAL", "TRACKER", "all_shard_names", "find", "options", "persistence", "shard",
           "shard_name", "shard_names_of", "shards", "tracker", "worker", "worker_name", "worker_options", "workers"]
