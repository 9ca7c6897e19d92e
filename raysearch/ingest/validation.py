"""Request validation (pure): parse bulk bodies, check names, ids and documents.

Per-item problems become entries of `errors`; only a body that cannot be read
at all is a 400.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Container

import orjson

from raysearch.errors import InvalidIndexName, InvalidJSON, InvalidRequest
from raysearch.ingest import decoding

INDEX_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_ID_BYTES = 512
MAX_FIELD_CHARS = 256
MAX_DEPTH = 20
# C0 and C1 control characters, DEL, and lone UTF-16 surrogates: never in ids or field names.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def check_index_name(name: str) -> str:
    if not INDEX_NAME.match(name):
        raise InvalidIndexName(
            f"invalid index name {name!r}: use 1-64 characters from a-z, 0-9, '_' and '-', starting with a letter or digit"
        )
    return name


def parse_bulk_body(body: bytes, content_type: str) -> tuple[list, str | None]:
    """-> (raw documents, webhook). Raises InvalidRequest when nothing can be read."""
    if not body.strip():
        raise InvalidRequest("request body is empty; send a JSON array of documents or NDJSON")
    if "ndjson" in content_type or "jsonl" in content_type:
        return _parse_ndjson(body), None
    try:
        data = decoding.loads(body)
    except InvalidJSON:
        # Not one JSON value: maybe NDJSON sent without its content type.
        if body.strip().count(b"\n") >= 1:
            try:
                return _parse_ndjson(body), None
            except InvalidRequest:
                pass
        raise
    if isinstance(data, list):
        return data, None
    if isinstance(data, dict) and isinstance(data.get("documents"), list):
        webhook = data.get("webhook")
        if webhook is not None and not isinstance(webhook, str):
            raise InvalidRequest("'webhook' must be an http(s) URL string")
        return data["documents"], webhook
    if isinstance(data, dict):
        raise InvalidRequest("JSON object body must have a 'documents' array; or send a JSON array of documents")
    raise InvalidRequest(f"request body must be a JSON array of documents, not {type(data).__name__}")


def _parse_ndjson(body: bytes) -> list:
    docs = []
    for n, line in enumerate(body.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            docs.append(decoding.loads(line, f"line {n}"))
        except InvalidRequest as exc:
            docs.append(_Unreadable(exc.reason))
    if docs and all(isinstance(d, _Unreadable) for d in docs):
        raise InvalidRequest(f"no line of the NDJSON body is valid JSON ({docs[0].reason})")
    return docs


class _Unreadable:
    def __init__(self, reason: str):
        self.reason = reason


def validate_document(doc, max_doc_bytes: int, vector_fields: Container[str] = ()) -> tuple[dict | None, str | None, str | None]:
    """-> (document with its id, id, error reason). A list in one of `vector_fields` is left
    to the vector check (schema.check_vectors), and counts in the size as stored: float32,
    4 bytes a number (a shard keeps it apart from the stored JSON)."""
    if isinstance(doc, _Unreadable):
        return None, None, doc.reason
    if not isinstance(doc, dict):
        return None, None, f"document must be a JSON object, not {type(doc).__name__}"
    doc_id = doc.get("id")
    if doc_id is None:
        doc = {"id": uuid.uuid4().hex, **doc}
        doc_id = doc["id"]
    elif not isinstance(doc_id, str):
        return None, None, f"'id' must be a string, not {type(doc_id).__name__}"
    vectors = [k for k in vector_fields if type(doc.get(k)) is list] if vector_fields else ()
    reason = check_doc_id(doc_id) or _check_fields(doc, 1, vectors)
    if reason:
        return None, doc_id, reason
    try:  # also refuses what the HTTP decoder already refuses, for callers that skip it (in-cluster API)
        if vectors:  # written out, a vector's numbers cost ~16 us a 256-d vector, to be counted only
            stored = {k: v for k, v in doc.items() if k not in vectors}
            size = len(orjson.dumps(stored)) + sum(4 * len(doc[k]) for k in vectors)
        else:
            size = len(orjson.dumps(doc))
    except (TypeError, orjson.JSONEncodeError) as exc:
        return None, doc_id, f"document cannot be stored as JSON: {exc}"
    if size > max_doc_bytes:
        return None, doc_id, f"document is {size} bytes; the limit is {max_doc_bytes}"
    return doc, doc_id, None


def check_doc_id(doc_id: str) -> str | None:
    n = len(doc_id.encode())
    if n == 0 or n > MAX_ID_BYTES:
        return f"'id' must be 1-{MAX_ID_BYTES} UTF-8 bytes, got {n}"
    if _CONTROL.search(doc_id):
        return f"'id' must not contain control characters, got {doc_id[:40]!r}"
    return None


_NUMBERS = {int, float}  # exactly (a bool is neither here)


def _check_fields(value, depth: int, vectors: Container[str] = ()) -> str | None:
    """Why a value cannot be stored (names, nesting, numbers), or None; the top-level fields
    in `vectors` only by name (schema.check_vectors checks their numbers)."""
    if depth > MAX_DEPTH:
        return f"document nesting is deeper than {MAX_DEPTH}"
    if isinstance(value, dict):
        for key, item in value.items():
            if not key:
                return "field names must not be empty"
            if len(key) > MAX_FIELD_CHARS:
                return f"field name {key[:40]!r}... is longer than {MAX_FIELD_CHARS} characters"
            if key.startswith("$") or "." in key:
                return f"field name {key[:40]!r} must not start with '$' or contain '.'"
            if _CONTROL.search(key):
                return f"field name {key[:40]!r} must not contain control characters (NUL, U+0001-U+001F, U+007F-U+009F)"
            if key in vectors:
                continue
            reason = _check_fields(item, depth + 1)
            if reason:
                return reason
    elif isinstance(value, list):
        kinds = set(map(type, value))
        if kinds <= _NUMBERS:  # a list of numbers (a vector): checked in C passes, not item by item
            if float in kinds and (any(map(math.isinf, value)) or any(map(math.isnan, value))):
                return "NaN and Infinity are not JSON numbers"
            if int in kinds and not all(decoding.INT64_MIN <= v <= decoding.INT64_MAX for v in value if type(v) is int):
                return "integers must fit a signed 64-bit integer"
            return None
        for item in value:
            reason = _check_fields(item, depth + 1)
            if reason:
                return reason
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, int):
        if not decoding.INT64_MIN <= value <= decoding.INT64_MAX:
            return "integers must fit a signed 64-bit integer"
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return "NaN and Infinity are not JSON numbers"
    elif not isinstance(value, str):
        return f"unsupported value of type {type(value).__name__}"
    return None


def check_webhook(url, allowed_hosts: str) -> str:
    """The webhook URL if the server may call it, else InvalidRequest naming why (at intake, and again
    in the tracker before sending). Only http(s), no credentials, and a host in `allowed_hosts`."""
    from fnmatch import fnmatchcase
    from urllib.parse import urlsplit

    if not isinstance(url, str) or not url or len(url) > 2048:
        raise InvalidRequest("'webhook' must be an http(s) URL of at most 2,048 characters")
    if _CONTROL.search(url) or any(c.isspace() for c in url):
        raise InvalidRequest("'webhook' must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise InvalidRequest(f"'webhook' is not a valid URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidRequest(f"'webhook' scheme must be http or https, not {parts.scheme!r}")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidRequest("'webhook' must not carry credentials (user:password@)")
    if not host:
        raise InvalidRequest("'webhook' has no host")
    patterns = [p.strip().lower() for p in allowed_hosts.split(",") if p.strip()]
    if not patterns:
        raise InvalidRequest("webhooks are disabled on this service: set RAYSEARCH_WEBHOOK_ALLOWED_HOSTS "
                             "to the host names they may call")
    if not any(fnmatchcase(host, p) for p in patterns):
        raise InvalidRequest(f"'webhook' host {host!r} is not allowed (RAYSEARCH_WEBHOOK_ALLOWED_HOSTS)")
    return url


def parse_fields(spec: str | None) -> list[tuple[str, float]] | None:
    """'title^2,body' -> [('title', 2.0), ('body', 1.0)]."""
    if not spec:
        return None
    out = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, boost = part.partition("^")
        try:
            value = float(boost) if boost else 1.0
        except ValueError:
            raise InvalidRequest(f"bad boost in fields: {part!r}; use name^number") from None
        if not name or value < 0:
            raise InvalidRequest(f"bad entry in fields: {part!r}")
        out.append((name, value))
    return out or None


def pydantic_reason(exc: Exception) -> str:
    """A pydantic ValidationError as 'loc.path: message; ...' (other exceptions: their text)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors())[:2000]
        except Exception:
            pass
    return f"{exc}"[:2000]
