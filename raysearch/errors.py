"""One error hierarchy; HTTP status mapping lives here and only here."""


class RaySearchError(Exception):
    status = 500
    type = "internal_error"
    retry_after: int | None = None  # seconds, sent as Retry-After when set

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason

    def to_json(self) -> dict:
        return {"error": {"type": self.type, "reason": self.reason}}


class InvalidRequest(RaySearchError):
    status = 400
    type = "invalid_request"


class InvalidJSON(InvalidRequest):
    """A body the JSON decoder refuses (ingest/decoding.py)."""

    type = "invalid_json"


class InvalidIndexName(InvalidRequest):
    """An index name outside the allowed characters (the same 400 as any bad request)."""


class Unauthorized(RaySearchError):
    status = 401
    type = "unauthorized"


class Forbidden(RaySearchError):
    """An API key without the action, or the index, a request needs."""

    status = 403
    type = "forbidden"


class NotFound(RaySearchError):
    status = 404
    type = "not_found"


class IndexNotFound(NotFound):
    type = "index_not_found"


class AlreadyExists(RaySearchError):
    status = 409
    type = "already_exists"


class Conflict(RaySearchError):
    status = 409
    type = "conflict"


class IndexBeingDeleted(Conflict):
    """A DELETE of the index is running: writes to it wait until it has finished."""

    type = "index_being_deleted"
    retry_after = 1


class PayloadTooLarge(RaySearchError):
    status = 413
    type = "payload_too_large"


class Overloaded(RaySearchError):
    status = 429
    type = "overloaded"
    retry_after = 1


class Unavailable(RaySearchError):
    status = 503
    type = "unavailable"


class MongoUnavailable(Unavailable):
    """MongoDB cannot be reached; callers wait and retry rather than fail work."""

    type = "mongodb_unavailable"
    retry_after = 5


class ShardUnavailable(Unavailable):
    """The shard is being rebuilt or its index deleted: its store is closed for reads."""

    type = "shard_unavailable"
    retry_after = 1


class StorageFull(RaySearchError):
    """The disk under a shard's RocksDB is full: writes to its index wait (nothing accepted
    is lost) and new ones are refused until space is freed."""

    status = 507
    type = "insufficient_storage"
    retry_after = 30


class DatasinkError(RaySearchError):
    """Rows of a Ray Data write were rejected or failed (`raysearch.RaySearchDatasink`).
    `failures` lists them: {"id", "reason"} (plus "operation_id", and "batch" or "position")."""

    type = "datasink_error"

    def __init__(self, reason: str, failures: list[dict] | None = None):
        super().__init__(reason)
        self.failures = list(failures or [])

    def __reduce__(self):  # keep `failures` across pickling (Ray ships exceptions between processes)
        return (type(self), (self.reason, self.failures))
