"""MongoDB outages as one error: every public method of the storage classes raises
MongoUnavailable (errors.py) where pymongo raised a connection failure, the one signal
every caller waits out."""

from __future__ import annotations

import functools
import inspect

import pymongo

from raysearch.errors import MongoUnavailable

# What an outage of the server looks like to pymongo (AutoReconnect and NetworkTimeout
# are ConnectionFailures); every public method of MongoStore and ChunkStore raises MongoUnavailable instead.
OUTAGES = (pymongo.errors.ConnectionFailure, pymongo.errors.ServerSelectionTimeoutError)


def outage_as_unavailable(fn):
    """The method, raising MongoUnavailable (errors.py) where pymongo raised an outage:
    the one signal every caller waits out (generators too: their reads happen as they are
    iterated)."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except OUTAGES as exc:
                raise MongoUnavailable(f"MongoDB unreachable: {exc}") from exc
        return generator

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except OUTAGES as exc:
            raise MongoUnavailable(f"MongoDB unreachable: {exc}") from exc
    return call


def outages_raise_unavailable(cls):
    for name, attr in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(attr):
            setattr(cls, name, outage_as_unavailable(attr))
    return cls
