"""pydantic models of the HTTP API (docs/api.md) and of index settings."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from raysearch.analysis.analyzer import AnalyzerSettings
from raysearch.analysis.embedding import BUILTIN_DIMS
from raysearch.schema import MAX_DIMS, check_field_name
from raysearch.status import ACTIVE, TERMINAL, OperationStatus  # noqa: F401  (the typed status)


class FieldSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["text", "keyword", "integer", "float", "boolean", "date", "vector"] = Field(
        default="text", description="text is analysed into words; vector holds `dims` numbers for kNN; "
                                    "the other types are exact (schema.py)")
    boost: float = Field(default=1.0, ge=0, description="multiplies the field's BM25 score")
    dims: int | None = Field(default=None, ge=1, le=MAX_DIMS, description="vector fields: dimensions")
    similarity: Literal["cosine", "dot_product", "l2"] | None = Field(
        default=None, description="vector fields: what kNN ranks by (default cosine)")

    def stored(self) -> dict:
        """As the index record keeps it: the vector options only on vector fields."""
        return self.model_dump(exclude={"dims", "similarity"} if self.type != "vector" else None)

    @model_validator(mode="after")
    def _vector_options(self) -> "FieldSettings":
        if self.type == "vector":
            if self.dims is None:
                raise ValueError("a vector field needs 'dims' (its number of dimensions)")
            if self.similarity is None:
                self.similarity = "cosine"
        elif self.dims is not None or self.similarity is not None:
            raise ValueError(f"'dims' and 'similarity' are for vector fields, not {self.type} fields")
        return self


class EmbedderSettings(BaseModel):
    """Where an index's vectors come from when a document has none (analysis/embedding.py)."""

    model_config = ConfigDict(extra="forbid")
    source: Literal["builtin"] = Field(default="builtin", description="builtin: static word embeddings "
                                       "(wordllama, 256 dimensions, shipped in its wheel: no download)")
    fields: list[str] = Field(min_length=1, description="text fields whose words are embedded")
    target: str = Field(description="the vector field the embedding goes into (256 dimensions)")


class IndexSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    shards: int = Field(default=4, ge=1, le=256, description="document-partitioned shards")
    analyzer: AnalyzerSettings = Field(default_factory=AnalyzerSettings)
    fields: dict[str, FieldSettings] = Field(
        default_factory=dict, description="declared fields: type, and boost for default search")

    embedder: EmbedderSettings | None = Field(default=None, description="fills a vector field from text fields")
    typo_tolerance: bool = Field(default=False, description="every plain query word also matches terms within "
                                 "Elasticsearch's AUTO edits of it (word~); exact matches rank first")
    all_field: Literal["derived", "indexed"] = Field(
        default="derived", description="how `_all`, the default search field, is kept: 'derived' (new indexes) "
        "merges the text fields' own postings when read; 'indexed' (indexes made before it existed) stores a "
        "second copy of every text posting. Scores are the same (raysearch/index/all_field.py)")

    @field_validator("fields")
    @classmethod
    def _field_names(cls, fields: dict) -> dict:
        for name in fields:
            check_field_name(name)
        return fields

    @classmethod
    def from_record(cls, raw: dict) -> "IndexSettings":
        """Settings as an index record keeps them. A record written before `all_field`
        existed describes an index whose `_all` postings are stored."""
        return cls(**{"all_field": "indexed", **raw})

    def stored(self) -> dict:
        """As the index record keeps it (records written before vectors existed read the same)."""
        drop = {"fields"} | ({"embedder"} if self.embedder is None else set()) | \
            (set() if self.typo_tolerance else {"typo_tolerance"})
        out = self.model_dump(exclude=drop)
        out["fields"] = {name: spec.stored() for name, spec in self.fields.items()}
        return out

    @model_validator(mode="after")
    def _embedder_target(self) -> "IndexSettings":
        if self.embedder is not None:
            target = self.fields.get(self.embedder.target)
            if target is None or target.type != "vector":
                raise ValueError(f"the embedder's target {self.embedder.target!r} must be a declared vector field")
            if target.dims != BUILTIN_DIMS:
                raise ValueError(f"the builtin embedder makes {BUILTIN_DIMS}-dimension vectors; "
                                 f"{self.embedder.target!r} has {target.dims}")
        return self


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
    knn: dict | None = Field(default=None, description='{"field", "vector", "k", "num_candidates"}: nearest '
                                                       'neighbours by the field\'s similarity (search/knn.py)')
    rank: dict | None = Field(default=None, description='q with knn: {"rrf": {"rank_constant", "window"}} '
                                                        '(default) or {"linear": {"weight"}}')
    expand: dict | None = Field(default=None, description='pseudo-relevance feedback: {"rm3": {"docs": 10, '
                                                          '"terms": 10, "weight": 0.5}} (search/expansion.py)')
    prefix_last: bool = Field(default=False, description="the last word of q is read as a prefix (search as "
                                                         "you type), unless q ends with a space")
    hybrid: bool = Field(default=False, description="q with the index's embedder: kNN on q's embedding too")


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
