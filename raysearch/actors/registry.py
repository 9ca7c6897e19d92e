"""Names and options of every actor, and get-or-create helpers.

Every stateful actor is named and detached in the `raysearch` namespace, so any
process (ingress replica, driver script, CLI) finds the same one, and Ray
restarts it after a crash (max_restarts=-1); it then restores its state from
RocksDB or MongoDB in __init__.
"""

from __future__ import annotations

import ray

from raysearch.config import NAMESPACE, Settings

TRACKER = "raysearch:tracker"
PERSISTENCE = "raysearch:persistence"


def worker_name(i: int) -> str:
    return f"raysearch:worker:{i}"


def shard_name(index: str, shard: int) -> str:
    return f"raysearch:shard:{index}:{shard}"


def _options(name: str, **extra) -> dict:
    opts = dict(
        name=name,
        namespace=NAMESPACE,
        get_if_exists=True,
        lifetime="detached",
        max_restarts=-1,
        num_cpus=0,  # 2-core machines stop scheduling num_cpus=1 actors after two
    )
    opts.update(extra)
    return opts


# Actors that run one call at a time (IndexWorker, PersistenceActor) execute their calls
# out of order: Ray then never holds a call back until an earlier one (from the same
# caller) has run. In order, one call cancelled before it ran (its caller, a request,
# was given up) kept every later call from that caller waiting for its turn for good.
# Their ping and status run in a "control" concurrency group of their own, so a long
# flush or batch never makes a live actor look dead to readiness.
SERIAL = dict(max_concurrency=1, allow_out_of_order_execution=True)


def tracker(settings: Settings):
    from raysearch.actors.tracker import TrackerActor

    return TrackerActor.options(**_options(TRACKER, max_task_retries=-1, max_concurrency=64)).remote(settings)


def persistence(settings: Settings):
    from raysearch.actors.persistence import PersistenceActor

    return PersistenceActor.options(**_options(PERSISTENCE, max_task_retries=-1, **SERIAL)).remote(settings)


def worker(settings: Settings, i: int):
    from raysearch.actors.index_worker import IndexWorker

    return IndexWorker.options(**worker_options(i)).remote(settings)


def worker_options(i: int) -> dict:
    return _options(worker_name(i), max_task_retries=0, scheduling_strategy="SPREAD", **SERIAL)


def workers(settings: Settings) -> list:
    return [worker(settings, i) for i in range(settings.workers)]


def shard(settings: Settings, index: str, n: int):
    from raysearch.actors.shard_store import ShardStore

    options = _options(shard_name(index, n), max_task_retries=3, max_concurrency=16, scheduling_strategy="SPREAD")
    return ShardStore.options(**options).remote(settings, index, n)


def shards(settings: Settings, index: str, count: int) -> list:
    return [shard(settings, index, n) for n in range(count)]


def shard_names_of(index: str) -> list[str]:
    """Names of the shard actors of `index` that exist (when its record cannot say how many)."""
    prefix = shard_name(index, "")
    names = ray.util.list_named_actors(all_namespaces=True)
    return sorted({n["name"] for n in names if n.get("namespace") == NAMESPACE and n["name"].startswith(prefix)
                   and n["name"][len(prefix):].isdigit()})


def all_shard_names() -> list[str]:
    """Names of every shard actor of every index."""
    prefix = "raysearch:shard:"
    names = ray.util.list_named_actors(all_namespaces=True)
    return sorted(n["name"] for n in names if n.get("namespace") == NAMESPACE and n["name"].startswith(prefix))


def find(name: str):
    """The named actor if it exists, else None."""
    try:
        return ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        return None
