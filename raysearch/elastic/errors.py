"""Elasticsearch's error shape (pure): `{"error": {"root_cause": [...], "type", "reason"}, "status"}`."""

from __future__ import annotations

from raysearch.errors import RaySearchError

# raysearch error types -> the Elasticsearch exception names clients know
_TYPES = {
    "invalid_request": "illegal_argument_exception",
    "invalid_json": "parsing_exception",
    "index_not_found": "index_not_found_exception",
    "not_found": "resource_not_found_exception",
    "already_exists": "resource_already_exists_exception",
    "conflict": "version_conflict_engine_exception",
    "overloaded": "es_rejected_execution_exception",
    "payload_too_large": "content_too_long_exception",
    "unauthorized": "security_exception",
    "forbidden": "security_exception",
    "unavailable": "unavailable_exception",
    "mongodb_unavailable": "unavailable_exception",
    "shard_unavailable": "unavailable_exception",
    "index_being_deleted": "illegal_state_exception",
}


class ElasticError(Exception):
    """An answer in Elasticsearch's error shape."""

    def __init__(self, status: int, type_: str, reason: str, **extra):
        super().__init__(reason)
        self.status, self.type, self.reason, self.extra = status, type_, reason, extra

    def to_json(self) -> dict:
        cause = {"type": self.type, "reason": self.reason, **self.extra}
        return {"error": {"root_cause": [cause], **cause}, "status": self.status}


def unsupported(what: str) -> ElasticError:
    """400 naming a feature of Elasticsearch's API that raysearch does not translate."""
    return ElasticError(400, "illegal_argument_exception", f"raysearch's Elasticsearch API does not support {what}")


def parsing(reason: str) -> ElasticError:
    return ElasticError(400, "parsing_exception", reason)


def index_not_found(index: str) -> ElasticError:
    return ElasticError(404, "index_not_found_exception", f"no such index [{index}]", index=index,
                        **{"resource.type": "index_or_alias", "resource.id": index, "index_uuid": "_na_"})


def from_raysearch(exc: RaySearchError, index: str | None = None) -> ElasticError:
    if exc.type == "index_not_found" and index:
        return index_not_found(index)
    return ElasticError(exc.status, _TYPES.get(exc.type, exc.type), exc.reason)


def item_error(type_: str, reason: str, index: str, doc_id: str | None) -> dict:
    out = {"type": type_, "reason": reason, "index": index}
    if doc_id is not None:
        out["shard"] = "0"
    return out
