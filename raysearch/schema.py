"""Typed fields (pure): the declared type of each field and how a value of it is read.

`text` is analysed into words (what every undeclared string field is). The other
types are exact: their values are checked per document at intake, normalised to
one comparable form and kept per shard as doc values (index/doc_values.py) for
filters, sorting and facets. Keyword values are also indexed as exact terms.

Normalised forms: keyword -> str; integer -> int (64-bit); float -> float;
boolean -> 0/1; date -> int epoch milliseconds (UTC).

`vector` fields are neither words nor exact values: a list of `dims` finite numbers per
document, kept as float32 in the shard's vector column (index/vectors.py) for kNN search.
"""

from __future__ import annotations

import base64
import binascii
import math
from datetime import datetime, timezone
from itertools import chain
from typing import Any, Iterable, NamedTuple

import numpy as np

TEXT, KEYWORD, INTEGER, FLOAT, BOOLEAN, DATE = "text", "keyword", "integer", "float", "boolean", "date"
VECTOR = "vector"
TYPES = (TEXT, KEYWORD, INTEGER, FLOAT, BOOLEAN, DATE, VECTOR)
SIMILARITIES = ("cosine", "dot_product", "l2")
MAX_DIMS = 4096
EXACT_TYPES = (KEYWORD, INTEGER, FLOAT, BOOLEAN, DATE)  # filterable, sortable, facetable
NUMERIC_TYPES = (INTEGER, FLOAT, BOOLEAN, DATE)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_KEYWORD_CHARS = 4096
MAX_VALUES = 1024  # values of one field in one document


class ValueError_(ValueError):
    """A value that does not fit its field's type (the message names the field)."""


def exact_fields(fields: dict[str, dict] | None) -> dict[str, str]:
    """field -> type, for the declared exact fields of index settings (not text, not vectors)."""
    return {name: spec.get("type", TEXT) for name, spec in (fields or {}).items()
            if spec.get("type", TEXT) not in (TEXT, VECTOR)}


_NUMBER_TYPES = {int, float}  # exactly: a bool is not a number here


class VectorSpec(NamedTuple):
    """A declared vector field: its dimensions and the similarity kNN ranks it by."""

    dims: int
    similarity: str = "cosine"


def vector_fields(fields: dict[str, dict] | None) -> dict[str, VectorSpec]:
    """field -> VectorSpec, for the declared vector fields of index settings."""
    return {name: VectorSpec(int(spec["dims"]), spec.get("similarity") or "cosine")
            for name, spec in (fields or {}).items() if spec.get("type") == VECTOR}


def vector_value(field: str, spec: VectorSpec, value: Any) -> np.ndarray:
    """A document's (or a query's) vector as float32; ValueError_ naming the field. A list of
    numbers, or a base64 string of big-endian float32 values (as Elasticsearch 9.3 takes in
    bulk requests: 1.4 KB for 256 dimensions against ~2.6-5.7 KB of JSON numbers, and no
    float to parse), or an array (the builtin embedder, in-cluster callers)."""
    if isinstance(value, np.ndarray):  # from the builtin embedder (analysis/embedding.py)
        if value.shape != (spec.dims,):
            raise ValueError_(f"field {field!r} is a vector of {spec.dims} dimensions, got shape {value.shape}")
        return value.astype(np.float32, copy=False)
    if isinstance(value, str):
        return _base64_vector(field, spec, value)
    if not isinstance(value, (list, tuple)):
        raise ValueError_(f"field {field!r} is a vector: expected a list of {spec.dims} numbers (or a base64 "
                          f"string of {spec.dims} big-endian float32 values), got {_kind(value)}")
    if len(value) != spec.dims:
        raise ValueError_(f"field {field!r} is a vector of {spec.dims} dimensions, got {len(value)} numbers")
    if not set(map(type, value)) <= _NUMBER_TYPES:  # one pass in C: ~50x a Python loop over 256 items
        bad = next(item for item in value if type(item) not in _NUMBER_TYPES)
        raise ValueError_(f"field {field!r} is a vector: expected numbers, got {_kind(bad)}")
    try:
        vector = np.asarray(value, dtype=np.float64)
    except OverflowError:  # an integer beyond float64
        raise ValueError_(f"field {field!r}: a vector value is beyond float32's range") from None
    if not np.isfinite(vector).all():
        raise ValueError_(f"field {field!r}: vector values must be finite (no NaN or Infinity)")
    if np.abs(vector).max(initial=0.0) > 3.0e38:
        raise ValueError_(f"field {field!r}: a vector value is beyond float32's range")
    if spec.similarity == "cosine" and not vector.any():
        raise ValueError_(f"field {field!r}: a zero vector has no cosine similarity")
    return vector.astype(np.float32)


def _base64_vector(field: str, spec: VectorSpec, value: str) -> np.ndarray:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError_(f"field {field!r} is a vector: a string must be base64 (of {spec.dims} big-endian "
                          f"float32 values), got {value[:40]!r}") from None
    if len(raw) != 4 * spec.dims:
        raise ValueError_(f"field {field!r} is a vector of {spec.dims} dimensions: its base64 string holds "
                          f"{len(raw)} bytes, not {4 * spec.dims} (big-endian float32 values)")
    vector = np.frombuffer(raw, dtype=">f4").astype(np.float32)
    if not np.isfinite(vector).all():
        raise ValueError_(f"field {field!r}: vector values must be finite (no NaN or Infinity)")
    if spec.similarity == "cosine" and not vector.any():
        raise ValueError_(f"field {field!r}: a zero vector has no cosine similarity")
    return vector


def base64_vector(vector) -> str:
    """A vector as the base64 string of its big-endian float32 values: what a bulk request may
    send instead of a list of numbers (vector_value reads it back)."""
    return base64.b64encode(np.asarray(vector, dtype=">f4").tobytes()).decode("ascii")


def stored_vector(value) -> np.ndarray | list:
    """A value vector_value accepted, as what a float32 array is made from (index/batch.py
    stacks them): a base64 string decoded; a list or an array as it is."""
    if isinstance(value, str):
        return np.frombuffer(base64.b64decode(value), dtype=">f4")
    return value


def check_vectors(docs: list[dict], vectors: dict[str, VectorSpec]) -> list[str | None]:
    """Every document's vector fields checked as vector_value checks one, a field at a time
    over the whole list: per document, why one does not fit (naming the field) or None. Each
    value that fits is replaced by its float32 row, so the batch's encoding stacks rows
    instead of converting lists again (index/batch.encode_payload).

    Why: one vector at a time, numpy's fixed costs per call (the conversion, four checks,
    the cast) were ~16 us of the ingress's ~100 us a document with a 256-d vector; over a
    request's matrix they are ~6. A value the matrix cannot hold as it is (a tuple, an
    array, a wrong length, a bool or a string among the numbers) is checked on its own."""
    reasons: list[str | None] = [None] * len(docs)
    for field, spec in vectors.items():
        at = [i for i, doc in enumerate(docs) if doc.get(field) is not None]
        lists = [i for i in at if type(docs[i][field]) is list]  # base64 strings and arrays: on their own
        matrix = _number_matrix([docs[i][field] for i in lists], spec.dims) if lists else None
        if matrix is not None:
            with np.errstate(invalid="ignore", over="ignore"):
                fits = np.isfinite(matrix).all(axis=1) & (np.abs(matrix).max(axis=1, initial=0.0) <= 3.0e38)
                if spec.similarity == "cosine":
                    fits &= matrix.any(axis=1)
            rows = matrix.astype(np.float32)
            done = set()
            for j, i in enumerate(lists):
                if fits[j]:
                    docs[i][field] = rows[j]
                    done.add(i)
            at = [i for i in at if i not in done]
        for i in at:
            if reasons[i] is not None:
                continue
            try:  # on its own: the reason, in vector_value's words
                docs[i][field] = vector_value(field, spec, docs[i][field])
            except ValueError as exc:
                reasons[i] = str(exc)
    return reasons


def _number_matrix(values: list, dims: int) -> np.ndarray | None:
    """(len(values), dims) float64 if every value is a list of `dims` ints and floats (a bool
    is neither), else None."""
    if not all(type(v) is list and len(v) == dims for v in values):
        return None
    if not set(map(type, chain.from_iterable(values))) <= _NUMBER_TYPES:  # one pass in C
        return None
    try:
        return np.array(values, dtype=np.float64)
    except (OverflowError, ValueError, TypeError):  # an integer beyond float64
        return None


def vector_values(doc: dict, vectors: dict[str, VectorSpec]) -> dict[str, np.ndarray]:
    """field -> float32 vector, for every vector field the document has (absent or null: none)."""
    out = {}
    for field, spec in vectors.items():
        raw = doc.get(field)
        if raw is not None:
            out[field] = vector_value(field, spec, raw)
    return out


def check_field_name(name: Any) -> str:
    """A declarable field name (top-level; as document field names): else ValueError naming it."""
    if not isinstance(name, str) or not name or len(name) > 256:
        raise ValueError(f"field names are 1-256 characters, got {str(name)[:40]!r}")
    if name.startswith("$") or "." in name or any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name):
        raise ValueError(f"field name {name[:40]!r} must not start with '$' or contain '.' or control characters")
    if name in ("id", "_all"):
        raise ValueError(f"field name {name!r} is reserved")
    return name


def normalize(field: str, ftype: str, value: Any) -> int | float | str:
    """One value of a typed field in its normalised form; ValueError_ naming the field."""
    if ftype == KEYWORD:
        if not isinstance(value, str):
            raise ValueError_(f"field {field!r} is a keyword: expected a string, got {_kind(value)}")
        if len(value) > MAX_KEYWORD_CHARS:
            raise ValueError_(f"field {field!r}: keyword longer than {MAX_KEYWORD_CHARS} characters")
        if "\x00" in value:
            raise ValueError_(f"field {field!r}: keyword must not contain NUL")
        return value
    if ftype == INTEGER:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError_(f"field {field!r} is an integer: expected a whole number, got {_kind(value)}")
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError_(f"field {field!r} is an integer: got {value!r}")
            value = int(value)
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError_(f"field {field!r}: integer out of the 64-bit range")
        return value
    if ftype == FLOAT:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError_(f"field {field!r} is a float: expected a number, got {_kind(value)}")
        value = float(value)
        if not math.isfinite(value):
            raise ValueError_(f"field {field!r}: float must be finite")
        return value
    if ftype == BOOLEAN:
        if not isinstance(value, bool):
            raise ValueError_(f"field {field!r} is a boolean: expected true or false, got {_kind(value)}")
        return int(value)
    if ftype == DATE:
        return parse_date(field, value)
    raise ValueError_(f"field {field!r} has type {ftype!r}, which holds no exact values")


def parse_date(field: str, value: Any) -> int:
    """ISO 8601 string (a date, or a date and time; no zone = UTC) or epoch milliseconds -> epoch ms."""
    if isinstance(value, bool):
        raise ValueError_(f"field {field!r} is a date: expected an ISO 8601 string or epoch milliseconds, got a boolean")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not value.is_integer():
            raise ValueError_(f"field {field!r} is a date: epoch milliseconds must be whole, got {value!r}")
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError_(f"field {field!r}: date out of range")
        return int(value)
    if not isinstance(value, str):
        raise ValueError_(f"field {field!r} is a date: expected an ISO 8601 string or epoch milliseconds, got {_kind(value)}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError_(f"field {field!r} is a date: {value[:60]!r} is not ISO 8601 (e.g. 2024-05-01 or "
                          f"2024-05-01T12:00:00Z)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(round(parsed.timestamp() * 1000))


def lookup(doc: dict, path: str) -> Any:
    """The value at a dotted path of a document (nested objects), or None."""
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def typed_values(doc: dict, types: dict[str, str]) -> dict[str, list]:
    """field -> sorted distinct normalised values, for every typed field the document has.

    A field that is absent or null (or an empty list) has no values. Raises ValueError_
    naming the field for a value of the wrong type."""
    out: dict[str, list] = {}
    for field, ftype in types.items():
        raw = doc.get(field) if "." not in field else lookup(doc, field)
        if raw is None:
            continue
        if not isinstance(raw, (list, dict)):  # the usual case: one value (a set and a sort cost more)
            out[field] = [normalize(field, ftype, raw)]
            continue
        items: Iterable = raw if isinstance(raw, list) else (raw,)
        values = set()
        for item in items:
            if item is None:
                continue
            if isinstance(item, (list, dict)):
                raise ValueError_(f"field {field!r}: expected {ftype} values, got a nested {_kind(item)}")
            values.add(normalize(field, ftype, item))
        if len(values) > MAX_VALUES:
            raise ValueError_(f"field {field!r}: more than {MAX_VALUES} values")
        if values:
            out[field] = sorted(values)
    return out


def type_error(doc: dict | None, types: dict[str, str], vectors: dict[str, VectorSpec] | None = None) -> str | None:
    """Why a document's typed or vector fields do not fit their types (naming the field), or None."""
    if doc is None or not (types or vectors):
        return None
    try:
        typed_values(doc, types)
        if vectors:
            vector_values(doc, vectors)
    except ValueError as exc:
        return str(exc)
    return None


def display(ftype: str, value):
    """A normalised value as it appears in responses (sort values, facet keys)."""
    if ftype == BOOLEAN:
        return bool(value)
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
