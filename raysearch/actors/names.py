"""Names, options and lookup of the actors -- and nothing that starts one.

Every stateful actor is named and detached in the `raysearch` namespace, so any
process (ingress replica, driver script, CLI) finds the same one, and Ray
restarts it after a crash (max_restarts=-1); it then restores its state from
RocksDB or MongoDB in __init__. Each actor module starts its own kind
(`shard_store.shard`, `index_worker.worker`, ...), with the options made here;
`registry` gathers them for the code above the actors. This module imports no
actor, so every actor can look the others up without an import circle.
"""

from __future__ import annotations

import ray

from raysearch.config import NAMESPACE

TRACKER = "raysearch:tracker"
PERSISTENCE = "raysearch:persistence"

# Actors that run one call at a time (IndexWorker, PersistenceActor) execute their calls
# out of order: Ray then never holds a call back until an earlier one (from the same
# caller) has run. In order, one call cancelled before it ran (its caller, a request,
# was given up) kept every later call from that caller waiting for its turn for good.
# Their ping and status run in a "control" concurrency group of their own, so a long
# flush or batch never makes a live actor look dead to readiness.
SERIAL = dict(max_concurrency=1, allow_out_of_order_execution=True)
CONTROL_GROUPS = {"control": 1}


def worker_name(i: int) -> str:
    return f"raysearch:worker:{i}"


def shard_name(index: str, shard: int) -> str:
    return f"raysearch:shard:{index}:{shard}"


def options(name: str, **extra) -> dict:
    """Get-or-create options of a named, detached, restarted actor."""
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


def find(name: str):
    """The named actor if it exists, else None."""
    try:
        return ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        return None


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
