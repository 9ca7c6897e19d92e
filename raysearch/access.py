"""Scoped API keys: what a key may do (actions) and where (index patterns), and which
action each route needs. Pure: serve/app.py authenticates and asks `Principal.require`;
app/keys.py stores and looks keys up.

A key is `rsk_<id>_<secret>`: the id finds its record, the secret (32 random bytes) is
kept only as its SHA-256 (a fast hash is enough for a secret of 256 random bits: there is
nothing to guess) and compared in constant time. The admin key (RAYSEARCH_API_KEY) may
do everything, `keys.manage` included.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

from raysearch.errors import Forbidden, InvalidRequest

SEARCH = "search"
DOCUMENTS_READ = "documents.read"
DOCUMENTS_WRITE = "documents.write"
INDEXES_MANAGE = "indexes.manage"
OPERATIONS_READ = "operations.read"
KEYS_MANAGE = "keys.manage"
ALL = "*"
ACTIONS = (SEARCH, DOCUMENTS_READ, DOCUMENTS_WRITE, INDEXES_MANAGE, OPERATIONS_READ, KEYS_MANAGE)
ANY_KEY = ()  # a route any valid key may call (the root, /docs, refresh)
READ_INDEX = (SEARCH, DOCUMENTS_READ, INDEXES_MANAGE)  # an index's description: any of these

KEY_PREFIX = "rsk_"
_PATTERN = re.compile(r"^(\*|[a-z0-9][a-z0-9_-]{0,63}\*?)$")

# (method, route template) -> the actions of which the key needs one. Every route of the
# API is here (a test walks them all); a route missing from it needs the admin key.
_INDEX = "/indexes/{index}"
_ES = "/_elastic"
ROUTES: dict[tuple[str, str], tuple[str, ...]] = {
    ("GET", "/readyz"): (OPERATIONS_READ,),
    ("GET", "/stats"): (OPERATIONS_READ,),
    ("GET", "/indexes"): READ_INDEX,  # lists only the indexes the key may see
    ("PUT", _INDEX): (INDEXES_MANAGE,),
    ("PUT", _INDEX + "/fields"): (INDEXES_MANAGE,),
    ("GET", _INDEX): READ_INDEX,
    ("DELETE", _INDEX): (INDEXES_MANAGE,),
    ("POST", _INDEX + "/verify"): (INDEXES_MANAGE,),
    ("POST", _INDEX + "/restore"): (INDEXES_MANAGE,),
    ("POST", "/bulk-indexing/{index}"): (DOCUMENTS_WRITE,),
    ("GET", "/bulk-operations"): (OPERATIONS_READ,),  # lists only the key's indexes' operations
    ("GET", "/bulk-operations/{operation_id}"): (OPERATIONS_READ,),  # its index checked by the route
    ("POST", "/bulk-operations/{operation_id}/retry"): (DOCUMENTS_WRITE,),  # likewise
    ("GET", _INDEX + "/documents/{doc_id}"): (DOCUMENTS_READ,),
    ("PUT", _INDEX + "/documents/{doc_id}"): (DOCUMENTS_WRITE,),
    ("DELETE", _INDEX + "/documents/{doc_id}"): (DOCUMENTS_WRITE,),
    ("GET", _INDEX + "/search"): (SEARCH,),
    ("POST", _INDEX + "/search"): (SEARCH,),
    ("POST", _INDEX + "/snapshot"): (INDEXES_MANAGE,),
    ("POST", _INDEX + "/reindex"): (INDEXES_MANAGE,), ("GET", "/reindex/{operation_id}"): (INDEXES_MANAGE,), ("POST", "/snapshots/restore"): (INDEXES_MANAGE,),
    ("GET", "/aliases"): (INDEXES_MANAGE,), ("POST", "/aliases"): (INDEXES_MANAGE,),
    ("PUT", "/aliases/{alias}"): (INDEXES_MANAGE,), ("DELETE", "/aliases/{alias}"): (INDEXES_MANAGE,),
    ("POST", "/keys"): (KEYS_MANAGE,),
    ("GET", "/keys"): (KEYS_MANAGE,),
    ("DELETE", "/keys/{key_id}"): (KEYS_MANAGE,),
    # the search page: open without a key (serve/auth.py OPEN_ROUTES), any key with one
    ("GET", "/"): ANY_KEY, ("GET", "/ui"): ANY_KEY, ("GET", "/ui/{file}"): ANY_KEY,
    # the Elasticsearch-compatible API
    ("GET", _ES): ANY_KEY, ("GET", _ES + "/"): ANY_KEY, ("HEAD", _ES): ANY_KEY, ("HEAD", _ES + "/"): ANY_KEY,
    ("GET", _ES + "/_cluster/health"): (OPERATIONS_READ,),
    ("POST", _ES + "/_bulk"): (DOCUMENTS_WRITE,), ("PUT", _ES + "/_bulk"): (DOCUMENTS_WRITE,),  # per action too
    ("POST", _ES + "/{index}/_bulk"): (DOCUMENTS_WRITE,), ("PUT", _ES + "/{index}/_bulk"): (DOCUMENTS_WRITE,),
    ("POST", _ES + "/_refresh"): ANY_KEY, ("GET", _ES + "/_refresh"): ANY_KEY,
    ("POST", _ES + "/{index}/_refresh"): READ_INDEX, ("GET", _ES + "/{index}/_refresh"): READ_INDEX,
    ("PUT", _ES + "/{index}"): (INDEXES_MANAGE,),
    ("DELETE", _ES + "/{index}"): (INDEXES_MANAGE,),
    ("HEAD", _ES + "/{index}"): READ_INDEX, ("GET", _ES + "/{index}"): READ_INDEX,
    ("GET", _ES + "/{index}/_mapping"): READ_INDEX,
    ("PUT", _ES + "/{index}/_mapping"): (INDEXES_MANAGE,), ("POST", _ES + "/{index}/_mapping"): (INDEXES_MANAGE,),
    ("GET", _ES + "/{index}/_doc/{doc_id}"): (DOCUMENTS_READ,), ("HEAD", _ES + "/{index}/_doc/{doc_id}"): (DOCUMENTS_READ,),
    ("GET", _ES + "/{index}/_source/{doc_id}"): (DOCUMENTS_READ,),
    ("PUT", _ES + "/{index}/_doc/{doc_id}"): (DOCUMENTS_WRITE,), ("POST", _ES + "/{index}/_doc/{doc_id}"): (DOCUMENTS_WRITE,),
    ("POST", _ES + "/{index}/_doc"): (DOCUMENTS_WRITE,),
    ("PUT", _ES + "/{index}/_create/{doc_id}"): (DOCUMENTS_WRITE,),
    ("POST", _ES + "/{index}/_create/{doc_id}"): (DOCUMENTS_WRITE,),
    ("POST", _ES + "/{index}/_update/{doc_id}"): (DOCUMENTS_WRITE,),
    ("DELETE", _ES + "/{index}/_doc/{doc_id}"): (DOCUMENTS_WRITE,),
    ("GET", _ES + "/{index}/_search"): (SEARCH,), ("POST", _ES + "/{index}/_search"): (SEARCH,),
    ("GET", _ES + "/{index}/_count"): (SEARCH,), ("POST", _ES + "/{index}/_count"): (SEARCH,),
}
_CATCH_ALL = _ES + "/{path:path}"  # unsupported Elasticsearch endpoints: answered 4xx to any key


def required(method: str, template: str) -> tuple[str, ...] | None:
    """The actions of which a key needs one for this route; None: the admin key only."""
    if template == _CATCH_ALL:
        return ANY_KEY
    return ROUTES.get((method, template))


def pattern_matches(pattern: str, index: str) -> bool:
    """`*` any index; `shop-*` any name starting with `shop-`; else the exact name."""
    if pattern == ALL:
        return True
    if pattern.endswith("*"):
        return index.startswith(pattern[:-1])
    return index == pattern


def pattern_within(pattern: str, patterns: tuple[str, ...]) -> bool:
    """Whether every index `pattern` matches is matched by one of `patterns`."""
    for outer in patterns:
        if outer == ALL or outer == pattern:
            return True
        if outer.endswith("*") and pattern.startswith(outer[:-1]):
            return True
    return False


@dataclass(frozen=True)
class Principal:
    """Who a request comes from: the admin key, or a scoped key."""

    key_id: str | None  # None: the admin key
    actions: frozenset[str]
    indexes: tuple[str, ...]

    @property
    def is_admin(self) -> bool:
        return self.key_id is None

    def may(self, action: str, index: str | None = None) -> bool:
        if not (ALL in self.actions or action in self.actions):
            return False
        return index is None or any(pattern_matches(p, index) for p in self.indexes)

    def sees(self, index: str) -> bool:
        return any(pattern_matches(p, index) for p in self.indexes)

    def require(self, actions: tuple[str, ...], index: str | None = None) -> None:
        """Forbidden (403) naming what is missing, unless one of `actions` is allowed on `index`."""
        if self.is_admin or not actions and (index is None or self.sees(index)):
            return
        if any(self.may(a, index) for a in actions):
            return
        wanted = " or ".join(actions) or "any action"
        if index is not None and any(ALL in self.actions or a in self.actions for a in actions):
            raise Forbidden(f"API key {self.key_id!r} may not act on index {index!r} "
                            f"(its indexes: {', '.join(self.indexes)})")
        raise Forbidden(f"API key {self.key_id!r} lacks the action {wanted}"
                        + (f" on index {index!r}" if index else ""))


ADMIN = Principal(None, frozenset({ALL}), (ALL,))


# ------------------------------------------------------------------ key records
def new_key() -> tuple[str, str, str]:
    """(key id, secret, the key as given to its holder)."""
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    return key_id, secret, f"{KEY_PREFIX}{key_id}_{secret}"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(token: str) -> tuple[str, str] | None:
    """(key id, secret) of a key's text, or None if it is not one of ours."""
    if not token.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = token[len(KEY_PREFIX):].partition("_")
    if not sep or not key_id or not secret or len(token) > 200:
        return None
    return key_id, secret


def secret_matches(record: dict, secret: str, now: float | None = None) -> bool:
    """The secret is the record's (constant time) and the key has not expired."""
    if not hmac.compare_digest(record.get("hash", ""), hash_secret(secret)):
        return False
    expires = record.get("expires_at")
    return expires is None or (time.time() if now is None else now) < expires


def principal_of(record: dict) -> Principal:
    return Principal(record["_id"], frozenset(record["actions"]), tuple(record["indexes"]))


def check_new_key(body: dict, creator: Principal, now: float | None = None) -> dict:
    """A POST /keys body checked whole: {"actions", "indexes", "expires_at"?, "description"?}
    -> the fields to store. A key never gets more than the key that creates it."""
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be an object: {\"actions\": [...], \"indexes\": [...]}")
    unknown = set(body) - {"actions", "indexes", "expires_at", "description"}
    if unknown:
        raise InvalidRequest(f"unknown field {sorted(unknown)[0]!r}; a key has actions, indexes, "
                             f"expires_at and description")
    actions, indexes = body.get("actions"), body.get("indexes", [ALL])
    if not isinstance(actions, list) or not actions or not all(isinstance(a, str) for a in actions):
        raise InvalidRequest(f"actions must be a non-empty list of: {', '.join(ACTIONS)} or '*'")
    for action in actions:
        if action != ALL and action not in ACTIONS:
            raise InvalidRequest(f"unknown action {action[:40]!r}; actions are {', '.join(ACTIONS)} or '*'")
    if not isinstance(indexes, list) or not indexes or not all(isinstance(p, str) for p in indexes):
        raise InvalidRequest("indexes must be a non-empty list of index names or patterns such as 'shop-*'")
    for pattern in indexes:
        if not _PATTERN.match(pattern):
            raise InvalidRequest(f"invalid index pattern {pattern[:70]!r}: an index name, a prefix followed by "
                                 f"'*', or '*'")
    expires_at = body.get("expires_at")
    if expires_at is not None:
        if isinstance(expires_at, bool) or not isinstance(expires_at, (int, float)):
            raise InvalidRequest("expires_at must be a time in seconds since the epoch (a number)")
        if expires_at <= (time.time() if now is None else now):
            raise InvalidRequest("expires_at is in the past")
    description = body.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > 500):
        raise InvalidRequest("description must be a string of at most 500 characters")
    if not creator.is_admin:
        wider = [a for a in actions if not (ALL in creator.actions or a in creator.actions)]
        if wider or (ALL in actions and ALL not in creator.actions):
            raise Forbidden(f"a key may not grant actions it lacks: {', '.join(wider or [ALL])}")
        outside = [p for p in indexes if not pattern_within(p, creator.indexes)]
        if outside:
            raise Forbidden(f"a key may not grant indexes outside its own: {', '.join(outside)}")
    return {"actions": sorted(set(actions)), "indexes": sorted(set(indexes)),
            "expires_at": float(expires_at) if expires_at is not None else None, "description": description}
