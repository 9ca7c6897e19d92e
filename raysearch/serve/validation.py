"""Request validation (pure): parse bulk bodies, check names, ids and documents.

Per-item problems become entries of `errors`; only a body that cannot be read
at all is a 400.
"""

from __future__ import annotations

import json
import re
import uuid

from raysearch.errors import InvalidRequest

INDEX_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_ID_BYTES = 512
MAX_FIELD_CHARS = 256
MAX_DEPTH = 20


def check_index_name(name: str) -> str:
    if not INDEX_NAME.match(name):
        raise InvalidRequest(
            f"invalid index name {name!r}: use 1-64 characters from a-z, 0-9, '_' and '-', starting with a letter or digit"
        )
    return name


def parse_bulk_body(body: bytes, content_type: str) -> tuple[list, str | None]:
    """-> (raw documents, webhook). Raises InvalidRequest when nothing can be read."""
    if not body.strip():
        raise InvalidRequest("request body is empty; send a JSON array of documents or NDJSON")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"request body is not UTF-8: {exc}") from None
    if "ndjson" in content_type or "jsonl" in content_type:
        return _parse_ndjson(text), None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # Not one JSON value: maybe NDJSON sent without its content type.
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if len(lines) > 1:
            try:
                return _parse_ndjson(text), None
            except InvalidRequest:
                pass
        raise InvalidRequest(f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if isinstance(data, list):
        return data, None
    if isinstance(data, dict) and isinstance(data.get("documents"), list):
        webhook = data.get("webhook")
        if webhook is not None and (not isinstance(webhook, str) or not re.match(r"^https?://", webhook)):
            raise InvalidRequest("'webhook' must be an http(s) URL")
        return data["documents"], webhook
    if isinstance(data, dict):
        raise InvalidRequest("JSON object body must have a 'documents' array; or send a JSON array of documents")
    raise InvalidRequest(f"request body must be a JSON array of documents, not {type(data).__name__}")


def _parse_ndjson(text: str) -> list:
    docs = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            docs.append(json.loads(line))
        except json.JSONDecodeError as exc:
            docs.append(_Unreadable(f"line {n} is not valid JSON: {exc.msg}"))
    if docs and all(isinstance(d, _Unreadable) for d in docs):
        raise InvalidRequest(f"no line of the NDJSON body is valid JSON ({docs[0].reason})")
    return docs


class _Unreadable:
    def __init__(self, reason: str):
        self.reason = reason


def validate_document(doc, max_doc_bytes: int) -> tuple[dict | None, str | None, str | None]:
    """-> (document with its id, id, error reason)."""
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
    reason = check_doc_id(doc_id) or _check_fields(doc, 1)
    if reason:
        return None, doc_id, reason
    size = len(json.dumps(doc, ensure_ascii=False).encode())
    if size > max_doc_bytes:
        return None, doc_id, f"document is {size} bytes; the limit is {max_doc_bytes}"
    return doc, doc_id, None


def check_doc_id(doc_id: str) -> str | None:
    n = len(doc_id.encode())
    if n == 0 or n > MAX_ID_BYTES:
        return f"'id' must be 1-{MAX_ID_BYTES} UTF-8 bytes, got {n}"
    if "\x00" in doc_id:
        return "'id' must not contain NUL"
    return None


def _check_fields(value, depth: int) -> str | None:
    if depth > MAX_DEPTH:
        return f"document nesting is deeper than {MAX_DEPTH}"
    if isinstance(value, dict):
        for key, item in value.items():
            if not key:
                return "field names must not be empty"
            if len(key) > MAX_FIELD_CHARS:
                return f"field name {key[:40]!r}... is longer than {MAX_FIELD_CHARS} characters"
            if key.startswith("$") or "." in key or "\x00" in key:
                return f"field name {key!r} must not start with '$' or contain '.' or NUL"
            reason = _check_fields(item, depth + 1)
            if reason:
                return reason
    elif isinstance(value, list):
        for item in value:
            reason = _check_fields(item, depth + 1)
            if reason:
                return reason
    return None


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
