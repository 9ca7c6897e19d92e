"""The API keys of a service: created, listed and revoked through /keys, looked up when a
request presents one (raysearch/access.py says what a key may do).

A replica remembers a looked-up key for KEY_CACHE_S so that a search does not pay a
MongoDB read. Revocation is nevertheless at once on every replica, as seen by the one who
revokes: DELETE /keys/{id} answers only KEY_CACHE_S after the record is gone, and a
remembered lookup is dated from before its read began, so every lookup that could still
have seen the key has expired by the time the revocation is acknowledged. No message
between replicas is needed (Serve gives no way to reach them all), at the price of one
second per revocation.
"""

from __future__ import annotations

import asyncio
import time

from raysearch import access
from raysearch.errors import InvalidRequest, NotFound
from raysearch.storage.mongo import MongoStore

KEY_CACHE_S = 1.0


class KeyRing:
    def __init__(self, mongo: MongoStore, admin_key: str | None):
        self.mongo, self.admin_key = mongo, admin_key
        self._cache: dict[str, tuple[float, dict | None]] = {}  # key id -> (read at, record or None)

    async def authenticate(self, token: str) -> access.Principal | None:
        """The principal a presented key stands for; None if it is no valid key."""
        parts = access.split_key(token)
        if parts is None:
            return None
        key_id, secret = parts
        cached = self._cache.get(key_id)
        if cached is None or time.monotonic() - cached[0] > KEY_CACHE_S:
            # dated before the read: a read that began before a revocation expires before
            # that revocation is acknowledged, however long the read took
            began = time.monotonic()
            record = await asyncio.to_thread(self.mongo.get_key, key_id)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key_id] = cached = (began, record)
        record = cached[1]
        if record is None or not access.secret_matches(record, secret):
            return None
        return access.principal_of(record)

    async def create(self, body: dict, creator: access.Principal) -> dict:
        if not self.admin_key:
            raise InvalidRequest("scoped keys need an admin key: set RAYSEARCH_API_KEY (the service is open "
                                 "to every request without one)")
        fields = access.check_new_key(body, creator)
        key_id, secret, key = access.new_key()
        record = {"_id": key_id, "hash": access.hash_secret(secret), **fields, "created_at": time.time(),
                  "created_by": creator.key_id or "admin"}
        await asyncio.to_thread(self.mongo.insert_key, record)
        return {"key": key, **_public(record)}

    async def list(self) -> dict:
        return {"keys": [_public(r) for r in await asyncio.to_thread(self.mongo.list_keys)]}

    async def revoke(self, key_id: str) -> dict:
        if not await asyncio.to_thread(self.mongo.delete_key, key_id):
            raise NotFound(f"no such API key: {key_id!r}")
        self._cache.pop(key_id, None)
        # every other replica's remembered lookup of it is older than this wait (module doc)
        await asyncio.sleep(KEY_CACHE_S)
        return {"acknowledged": True, "id": key_id}


def _public(record: dict) -> dict:
    """A key's record as the API shows it: never its secret or hash."""
    return {"id": record["_id"], "actions": record["actions"], "indexes": record["indexes"],
            "expires_at": record.get("expires_at"), "description": record.get("description"),
            "created_at": record.get("created_at"), "created_by": record.get("created_by")}
