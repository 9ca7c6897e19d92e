"""Elasticsearch `_bulk` and index bodies (pure; never imports Ray).

`parse_bulk` reads the NDJSON action/metadata lines; `plan_bulk` walks the actions in
order against which ids already exist and yields, per index, the final documents and
deletes to submit (a later action on an id replaces an earlier one, as applying them in
sequence would) plus one Elasticsearch item result per action. `index_settings` turns a
create-index body (mappings, settings) into raysearch index settings.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field as dc_field
from typing import Any, Callable

from raysearch import schema
from raysearch.elastic.errors import ElasticError, parsing, unsupported
from raysearch.elastic import vectors as es_vectors
from raysearch.elastic.query_dsl import ES_TYPES
from raysearch.ingest import decoding

OPS = ("index", "create", "update", "delete")
# Elasticsearch's standard analyzer: lowercase words, no stemming, no stop words
STANDARD = {"stemming": None, "stopwords": None, "ascii_folding": False}
ENGLISH = {"stemming": "english", "stopwords": "english", "ascii_folding": True}
_IGNORED_META = {"routing", "retry_on_conflict", "require_alias", "pipeline", "dynamic_templates",
                 "_source", "list_executed_pipelines", "require_data_stream"}


@dataclass
class Action:
    op: str
    index: str | None
    id: str | None
    source: Any = None
    error: tuple[int, str, str] | None = None  # (status, type, reason)


@dataclass
class IndexPlan:
    docs: dict[str, dict] = dc_field(default_factory=dict)  # id -> document (with "id")
    deletes: set[str] = dc_field(default_factory=set)


def parse_bulk(body: bytes, default_index: str | None) -> list[Action]:
    lines = [line for line in body.split(b"\n") if line.strip()]
    if not lines:
        raise parsing("request body is required")
    actions: list[Action] = []
    i = 0
    while i < len(lines):
        try:
            meta = decoding.loads(lines[i], f"bulk line {i + 1}")
        except Exception as exc:
            raise ElasticError(400, "x_content_parse_exception", getattr(exc, "reason", str(exc))) from None
        if not isinstance(meta, dict) or len(meta) != 1:
            raise ElasticError(400, "illegal_argument_exception",
                               f"Malformed action/metadata line [{i + 1}], expected an object with one action")
        (op, opts), = meta.items()
        if op not in OPS:
            raise ElasticError(400, "illegal_argument_exception",
                               f"Malformed action/metadata line [{i + 1}], expected one of [create, delete, "
                               f"index, update] but found [{op}]")
        if not isinstance(opts, dict):
            raise ElasticError(400, "illegal_argument_exception",
                               f"Malformed action/metadata line [{i + 1}], expected an object")
        index = opts.get("_index", default_index)
        doc_id = opts.get("_id")
        action = Action(op, index, None if doc_id is None else str(doc_id))
        if index is None:
            action.error = (400, "action_request_validation_exception", "Validation Failed: 1: index is missing;")
        for key in opts:
            if key in ("_index", "_id") or key in _IGNORED_META:
                continue
            action.error = (400, "illegal_argument_exception",
                            f"raysearch's Elasticsearch API does not support [{key}] in a bulk action")
        i += 1
        if op != "delete":
            if i >= len(lines):
                raise ElasticError(400, "illegal_argument_exception",
                                   f"The bulk request must be terminated by a newline [\\n]; line {i} has "
                                   f"no source")
            try:
                action.source = decoding.loads(lines[i], f"bulk line {i + 1}")
            except Exception as exc:
                action.error = action.error or (400, "document_parsing_exception", getattr(exc, "reason", str(exc)))
            i += 1
        elif doc_id is None and not action.error:
            action.error = (400, "action_request_validation_exception", "Validation Failed: 1: id is missing;")
        actions.append(action)
    return actions


def plan_bulk(actions: list[Action], exists: Callable[[str, str], bool],
              check: Callable[[str, dict], str | None]) -> tuple[dict[str, IndexPlan], list[dict]]:
    """-> (index -> IndexPlan, item results in order). `exists(index, id)` is whether the id is
    stored now; `check(index, doc)` the reason a document is refused (validation, types) or None."""
    plans: dict[str, IndexPlan] = {}
    state: dict[tuple[str, str], bool] = {}
    items = []
    for action in actions:
        items.append(_apply(action, plans, state, exists, check))
    return plans, items


def _item(action: Action, status: int, result: str | None = None, error: tuple | None = None,
          doc_id: str | None = None) -> dict:
    body: dict[str, Any] = {"_index": action.index, "_id": doc_id if doc_id is not None else action.id,
                            "status": status}
    if error is not None:
        body["error"] = {"type": error[1], "reason": error[2], "index": action.index}
        if doc_id is not None or action.id is not None:
            body["error"]["shard"] = "0"
    else:
        body.update({"_version": 1, "result": result, "_shards": {"total": 1, "successful": 1, "failed": 0},
                     "_seq_no": 0, "_primary_term": 1})
    return {action.op: body}


def _apply(action: Action, plans, state, exists, check) -> dict:
    if action.error:
        return _item(action, action.error[0], error=action.error)
    index = action.index
    plan = plans.setdefault(index, IndexPlan())

    def present(doc_id: str) -> bool:
        key = (index, doc_id)
        if key not in state:
            state[key] = exists(index, doc_id)
        return state[key]

    if action.op == "delete":
        if not present(action.id):
            return _item(action, 404, "not_found")
        plan.docs.pop(action.id, None)
        plan.deletes.add(action.id)
        state[(index, action.id)] = False
        return _item(action, 200, "deleted")
    source = action.source
    if action.op == "update":
        if not isinstance(source, dict):
            return _item(action, 400, error=(400, "illegal_argument_exception", "update body must be an object"))
        if action.id is None:
            return _item(action, 400, error=(400, "action_request_validation_exception",
                                             "Validation Failed: 1: id is missing;"))
        unknown = set(source) - {"doc", "doc_as_upsert", "upsert", "detect_noop", "_source"}
        if "script" in source or unknown:
            what = "script" if "script" in source else sorted(unknown)[0]
            return _item(action, 400, error=(400, "illegal_argument_exception",
                                             f"raysearch's Elasticsearch API does not support [{what}] in an "
                                             f"update (a `doc` replaces the whole document)"))
        if present(action.id):
            doc = source.get("doc")
        elif source.get("doc_as_upsert"):
            doc = source.get("doc")
        elif "upsert" in source:
            doc = source["upsert"]
        else:
            return _item(action, 404, error=(404, "document_missing_exception",
                                             f"[{action.id}]: document missing"))
        source = doc
    if not isinstance(source, dict):
        return _item(action, 400, error=(400, "document_parsing_exception",
                                         "the document source must be a JSON object"))
    doc_id = action.id
    if "id" in source:
        given = source["id"]
        if doc_id is None and isinstance(given, (str, int)) and not isinstance(given, bool):
            doc_id = str(given)
        elif doc_id is None or str(given) != doc_id:
            return _item(action, 400, error=(400, "document_parsing_exception",
                                             f"the field 'id' is raysearch's document id: it must equal the "
                                             f"_id ({doc_id!r}), got {given!r}"))
    if doc_id is None:
        doc_id = uuid.uuid4().hex
    existed = present(doc_id)
    if action.op == "create" and existed:
        return _item(action, 409, error=(409, "version_conflict_engine_exception",
                                         f"[{doc_id}]: version conflict, document already exists "
                                         f"(current version [1])"), doc_id=doc_id)
    doc = {**source, "id": doc_id}
    reason = check(index, doc)
    if reason:
        return _item(action, 400, error=(400, "document_parsing_exception", reason), doc_id=doc_id)
    plan.deletes.discard(doc_id)
    plan.docs.pop(doc_id, None)  # keep the order of the last write
    plan.docs[doc_id] = doc
    state[(index, doc_id)] = True
    return _item(action, 200 if existed else 201, "updated" if existed else "created", doc_id=doc_id)


def bulk_response(items: list[dict], took_ms: float) -> dict:
    errors = any("error" in next(iter(item.values())) for item in items)
    return {"took": int(round(took_ms)), "errors": errors, "items": items}


# ------------------------------------------------------------------ index bodies
def index_settings(body: dict | None, default_shards: int) -> dict:
    """A create-index body ({"mappings": {"properties"}, "settings"}) -> raysearch index settings."""
    body = body or {}
    unknown = set(body) - {"mappings", "settings", "aliases"}
    if unknown:
        raise parsing(f"unknown key [{sorted(unknown)[0]}] for create index")
    if body.get("aliases"):
        raise unsupported("index aliases")
    shards = default_shards
    settings = body.get("settings") or {}
    if not isinstance(settings, dict):
        raise parsing("[settings] must be an object")
    flat = _flatten_settings(settings)
    for key, value in flat.items():
        if key == "number_of_shards":
            try:
                shards = int(value)
            except (TypeError, ValueError):
                raise parsing(f"[index.number_of_shards] must be an integer, got {value!r}") from None
        elif key in ("number_of_replicas", "refresh_interval", "auto_expand_replicas", "max_result_window"):
            continue
        elif key.startswith("analysis"):
            raise unsupported("custom analysis settings (text fields use the standard analyzer, or english)")
        else:
            raise unsupported(f"the index setting [index.{key}]")
    mappings = body.get("mappings") or {}
    if not isinstance(mappings, dict):
        raise parsing("[mappings] must be an object")
    for key in mappings:
        if key not in ("properties", "dynamic", "_source", "_meta"):
            raise unsupported(f"the mapping option [{key}]")
    if mappings.get("dynamic") not in (None, True, "true"):
        raise unsupported(f"dynamic: {mappings['dynamic']!r} (undeclared string fields are always text)")
    fields, english = mapping_fields(mappings.get("properties") or {})
    return {"shards": shards, "analyzer": ENGLISH if english else STANDARD, "fields": fields}


def _flatten_settings(settings: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in settings.items():
        path = prefix + key
        if isinstance(value, dict) and value:
            out.update(_flatten_settings(value, path + "."))
        else:
            out[path] = value
    return {k[len("index."):] if k.startswith("index.") else k: v for k, v in out.items()}


_FIELD_OPTIONS = {"type", "analyzer", "search_analyzer", "index", "doc_values", "store", "norms",
                  "ignore_above", "scaling_factor", "format", "null_value", "coerce", "eager_global_ordinals"}


def mapping_fields(properties: dict) -> tuple[dict, bool]:
    """mappings.properties -> (raysearch `fields`, whether a text field asks for english analysis)."""
    if not isinstance(properties, dict):
        raise parsing("[properties] must be an object")
    fields, english = {}, False
    for name, spec in properties.items():
        if not isinstance(spec, dict):
            raise parsing(f"the mapping of [{name}] must be an object")
        if "properties" in spec:
            raise unsupported(f"object fields with properties ([{name}]); declare flat fields")
        if "fields" in spec:
            raise unsupported(f"multi-fields ([{name}].fields)")
        es_type = spec.get("type", "object")
        if es_type == "dense_vector":
            unknown = set(spec) - {"type"} - es_vectors.VECTOR_OPTIONS
            if unknown:
                raise unsupported(f"the mapping option [{sorted(unknown)[0]}] of [{name}]")
            fields[name] = es_vectors.vector_field(name, spec)
            continue
        rs_type = ES_TYPES.get(es_type)
        if rs_type is None:
            raise unsupported(f"the field type [{es_type}] (of [{name}]); supported: {', '.join(sorted([*ES_TYPES, 'dense_vector']))}")
        for key, value in spec.items():
            if key not in _FIELD_OPTIONS:
                raise unsupported(f"the mapping option [{key}] of [{name}]")
        for key in ("analyzer", "search_analyzer"):
            analyzer = spec.get(key)
            if analyzer is None or analyzer == "standard":
                continue
            if analyzer == "english" and rs_type == schema.TEXT:
                english = True
                continue
            raise unsupported(f"the analyzer [{analyzer}] of [{name}] (standard or english)")
        if spec.get("format") not in (None, "strict_date_optional_time||epoch_millis", "strict_date_optional_time",
                                      "date_optional_time", "epoch_millis"):
            raise unsupported(f"the date format [{spec['format']}] of [{name}] (ISO 8601 or epoch millis)")
        try:
            schema.check_field_name(name)
        except ValueError as exc:
            raise ElasticError(400, "mapper_parsing_exception", str(exc)) from None
        fields[name] = {"type": rs_type}
    return fields, english
