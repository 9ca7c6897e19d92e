"""Index aliases: a name that stands for one index, switched atomically (reindex without
downtime: build the new index while the alias serves the old one, then move the alias).

Every alias lives in one MongoDB document, replaced by compare-and-set on its version, so
a list of actions (`POST /aliases`) applies whole or not at all, and two replicas changing
aliases at once never lose one another's change (the loser reads again and retries). Each
replica reads the document at most every TTL_S seconds: a switch is seen everywhere within
that. An alias never has an index's name and the other way round (checked on both sides).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from raysearch.errors import Conflict, InvalidRequest, NotFound
from raysearch.ingest import validation

TTL_S = 2.0


class AliasBook:
    def __init__(self, mongo, index_exists):
        """`index_exists(name) -> bool` (blocking): whether an index (not an alias) has that name."""
        self.mongo, self.index_exists = mongo, index_exists
        self._map: dict[str, str] = {}
        self._read_at = float("-inf")

    async def current(self) -> dict[str, str]:
        if time.monotonic() - self._read_at > TTL_S:
            _, self._map = await asyncio.to_thread(self.mongo.get_aliases)
            self._read_at = time.monotonic()
        return self._map

    async def resolve(self, name: str) -> str | None:
        """The index an alias stands for, or None if `name` is no alias."""
        return (await self.current()).get(name)

    def forget(self) -> None:
        self._read_at = float("-inf")

    async def listing(self) -> dict:
        aliases = await self.current()
        return {"aliases": [{"alias": a, "index": i} for a, i in sorted(aliases.items())]}

    async def apply(self, actions: Any) -> dict:
        """[{"add": {"alias", "index"}} | {"remove": {"alias"}}, ...] applied atomically."""
        steps = _parse(actions)
        for _ in range(10):
            version, aliases = await asyncio.to_thread(self.mongo.get_aliases)
            new = dict(aliases)
            for kind, alias, index in steps:
                if kind == "remove":
                    if alias not in new:
                        raise NotFound(f"no alias {alias!r}")
                    del new[alias]
                    continue
                if not await asyncio.to_thread(self.index_exists, index):
                    raise NotFound(f"no such index: {index!r} (an alias points at an index, not at an alias)")
                if await asyncio.to_thread(self.index_exists, alias):
                    raise InvalidRequest(f"{alias!r} is an index; an alias needs a name no index has")
                new[alias] = index
            if new == aliases or await asyncio.to_thread(self.mongo.replace_aliases, version, new):
                self._map, self._read_at = new, time.monotonic()
                return {"acknowledged": True, **(await self.listing())}
        raise Conflict("the aliases kept changing; retry")

    async def drop_index(self, index: str) -> None:
        """An index was deleted: the aliases pointing at it go with it (as in Elasticsearch)."""
        _, aliases = await asyncio.to_thread(self.mongo.get_aliases)
        gone = [{"remove": {"alias": a}} for a, i in aliases.items() if i == index]
        if gone:
            try:
                await self.apply(gone)
            except NotFound:  # removed meanwhile
                pass


def _parse(actions: Any) -> list[tuple[str, str, str | None]]:
    if not isinstance(actions, list) or not actions:
        raise InvalidRequest('expected {"actions": [{"add": {"alias": a, "index": i}}, {"remove": {"alias": a}}, ...]}')
    steps = []
    for action in actions:
        if not isinstance(action, dict) or len(action) != 1 or next(iter(action)) not in ("add", "remove"):
            raise InvalidRequest(f'each action is {{"add": {{"alias", "index"}}}} or {{"remove": {{"alias"}}}}, '
                                 f'got {str(action)[:80]}')
        (kind, body), = action.items()
        if not isinstance(body, dict) or not isinstance(body.get("alias"), str):
            raise InvalidRequest(f"{kind}: needs an 'alias' name")
        alias = body["alias"]
        validation.check_index_name(alias)
        index = body.get("index")
        if kind == "add":
            if not isinstance(index, str):
                raise InvalidRequest(f"add {alias!r}: needs an 'index' name")
            validation.check_index_name(index)
        steps.append((kind, alias, index))
    return steps
