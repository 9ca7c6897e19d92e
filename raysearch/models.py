"""pydantic models of the HTTP API (docs/api.md) and of index settings."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from raysearch.analysis.analyzer import AnalyzerSettings
from raysearch.schema import check_field_name
from raysearch.status import ACTIVE, TERMINAL, OperationStatus  # noqa: F401  (the typed status)


class FieldSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["text", "keyword", "integer", "float", "boolean", "date"] = Field(
        default="text", description="text is analysed into words; the other types are exact (schema.py)")
    boost: float = Field(default=1.0, ge=0, description="multiplies the field's BM25 score")


class IndexSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    shards: int = Field(default=4, ge=1, le=256, description="document-partitioned shards")
    analyzer: AnalyzerSettings = Field(default_factory=AnalyzerSettings)
    fields: dict[str, FieldSettings] = Field(
        default_factory=dict, description="declared fields: type, and boost for default search")

    @field_validator("fields")
    @classmethod
    def _field_names(cls, fields: dict) -> dict:
        for name in fields:
            check_field_name(name)
        return fields


class SearchRequest(BaseModel):
    # strict: "size": "10" or "highlight": "maybe" in a JSON body is a 400, not a guess
    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)
    q: str | None = Field(default=None, description="query in the lenient query syntax; absent, '' or '*' = all")
    from_: int = Field(default=0, ge=0, alias="from")
    size: int = Field(default=10, ge=0)
    fields: str | None = Field(default=None, description="e.g. title^2,body")
    operator: str = Field(default="or", pattern="^(or|and)$")
    highlight: bool = False
    explain: bool = Field(default=False, description="each hit's score, clause by clause (idf, tf, field length, boost)")
    filter: Any = Field(default=None, description="filter tree (search/filters.py); does not score")
    sort: list | None = Field(default=None, description='e.g. ["_score"] or [{"installed_size": "desc"}]')
    search_after: list | None = Field(default=None, description="the `sort` values of the previous page's last hit")
    facets: dict | None = Field(default=None, description="name -> {terms|stats|histogram: {...}}")


# ---------------------------------------------------------------- client results
class Record(BaseModel):
    """Typed result that also reads like the JSON it came from (`r.total` or `r["total"]`)."""

    model_config = ConfigDict(extra="allow")

    def __getitem__(self, key: str):
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key: str, default=None):
        return getattr(self, key, default)

    def __contains__(self, key: str) -> bool:
        return getattr(self, key, None) is not None


class SearchHitResult(Record):
    id: str
    score: float | None = None
    document: dict
    highlight: dict[str, list[str]] | None = None
    sort: list | None = None


class SearchResult(Record):
    total: int
    took_ms: float
    hits: list[SearchHitResult]
    facets: dict | None = None


class DocumentCounts(Record):
    total: int
    indexed: int
    failed: int


class BatchCounts(Record):
    total: int
    indexed: int
    persisted: int
    failed: int


class Operation(Record):
    """The public view of a bulk operation (GET /bulk-operations/{id}; ops/operation.py Operation.view)."""

    operation_id: str
    index: str
    status: OperationStatus
    documents: DocumentCounts
    batches: BatchCounts
    errors: list[dict]
    created_at: float
    updated_at: float
    completed_at: float | None = None


class OperationsPage(Record):
    """GET /bulk-operations: newest first; `next` is the `after` of the following page, None at the end."""

    operations: list[Operation]
    next: str | None = None


class BulkAcceptedResult(Record):
    operation_id: str
    index: str
    status: str
    documents: int
    batches: int
    errors: list[dict]


def to_jsonable(value):
    """json.dumps default= hook for typed results."""
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_none=True)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
