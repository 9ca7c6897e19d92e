"""The Elasticsearch-compatible API under `/_elastic` (docs/api.md): a FastAPI router whose
handlers translate (query_dsl.py, bulk.py, responses.py) onto the replica's SearchService.

The ingress (serve/app.py) includes `router` and calls `bind(service)` in its constructor;
every answer carries `X-Elastic-Product: Elasticsearch`, errors come in Elasticsearch's shape.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from raysearch import schema
from raysearch.elastic import bulk as es_bulk
from raysearch.elastic import responses
from raysearch.elastic.errors import ElasticError, from_raysearch, index_not_found, parsing, unsupported
from raysearch.elastic.query_dsl import IndexView, translate_search
from raysearch.errors import IndexNotFound, InvalidIndexName, InvalidRequest, PayloadTooLarge, RaySearchError
from raysearch.ingest import decoding, validation
from raysearch.ingest.intake import overload

_service = None  # the replica's SearchService, set by the ingress (bind)


def bind(service) -> None:
    global _service
    _service = service


def _svc():
    if _service is None:
        raise ElasticError(503, "unavailable_exception", "the Elasticsearch API is not bound to a service yet")
    return _service


class ElasticRoute(APIRoute):
    """Every answer in Elasticsearch's shape, with the product header its clients check."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                response = await handler(request)
            except ElasticError as exc:
                response = _error(exc)
            except RaySearchError as exc:
                err = from_raysearch(exc, request.path_params.get("index"))
                if isinstance(exc, InvalidIndexName):
                    err = ElasticError(400, "invalid_index_name_exception", exc.reason)
                response = _error(err)
                if exc.retry_after:
                    response.headers["Retry-After"] = str(exc.retry_after)
            except Exception as exc:  # noqa: BLE001 - every failure answers in the client's shape
                response = _error(ElasticError(500, "exception", f"{type(exc).__name__}: {exc}"))
            if request.method == "HEAD":
                response = Response(status_code=response.status_code, headers={"content-length": "0"})
            response.headers.update(responses.PRODUCT_HEADERS)
            return response

        return route


def _error(exc: ElasticError) -> JSONResponse:
    return JSONResponse(exc.to_json(), status_code=exc.status)


# Not in raysearch's OpenAPI schema: the contract of these routes is Elasticsearch's REST API.
router = APIRouter(prefix="/_elastic", route_class=ElasticRoute, include_in_schema=False)


async def _body(request: Request) -> bytes:
    limit = _svc().settings.max_body_bytes
    declared = decoding.content_length(request.headers.get("content-length"))
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit}")
    body = await request.body()
    if len(body) > limit:
        raise PayloadTooLarge(f"request body is {len(body)} bytes; the limit is {limit}")
    return body


async def _json(request: Request, what: str) -> dict:
    body = await _body(request)
    if not body.strip():
        return {}
    value = decoding.loads(body, what)
    if not isinstance(value, dict):
        raise parsing(f"{what} must be a JSON object")
    return value


def _check_index(index: str) -> str:
    if index.startswith("_"):
        raise ElasticError(400, "illegal_argument_exception", f"unsupported endpoint or index name [{index}]")
    if any(c in index for c in ",*"):
        raise unsupported(f"several indices or wildcards in one request ([{index}])")
    return index


async def _meta(index: str):
    """(record, IndexTarget) of an existing index; 404 in Elasticsearch's shape otherwise."""
    _check_index(index)
    try:
        return await _svc().index(index)
    except IndexNotFound:
        raise index_not_found(index) from None


async def _view(index: str) -> tuple[IndexView, dict]:
    svc = _svc()
    meta, target = await _meta(index)
    types = target.types
    known = await svc.known_fields(target)
    return IndexView(types, {f for f in known if f not in types}, target.analyzer.terms), meta


def _flag(request: Request, name: str) -> bool:
    """A boolean URL parameter read as Elasticsearch reads it: absent is false, `?name` alone or
    `true` is true, `false` is false; anything else (`maybe`, `1`, `yes`) is a 400 naming it."""
    value = request.query_params.get(name)
    if value is None or value == "false":
        return False
    if value in ("", "true"):
        return True
    raise ElasticError(400, "illegal_argument_exception",
                       f"Failed to parse value [{value[:100]}] of parameter [{name}] "
                       f"as only [true] or [false] are allowed.")


_OP_TYPES = ("index", "create")


def _op_type(request: Request, default: str = "index") -> str:
    """`?op_type=` of a single-document write: `index` or `create` (any case, as Elasticsearch)."""
    value = request.query_params.get("op_type")
    if value is None:
        return default
    if value.lower() not in _OP_TYPES:
        raise ElasticError(400, "illegal_argument_exception",
                           f"opType must be 'create' or 'index', found: [{value[:100]}] (parameter [op_type])")
    return value.lower()


# ------------------------------------------------------------------ cluster
@router.get("")
@router.get("/")
async def info():
    return responses.root_info()


@router.head("/")
@router.head("")
async def ping():
    return {}


@router.get("/_cluster/health")
async def health():
    n = len(await _svc().catalog.records())
    return {"cluster_name": "raysearch", "status": "green", "timed_out": False, "number_of_nodes": 1,
            "number_of_data_nodes": 1, "active_primary_shards": n, "active_shards": n, "relocating_shards": 0,
            "initializing_shards": 0, "unassigned_shards": 0, "number_of_pending_tasks": 0,
            "active_shards_percent_as_number": 100.0}


# ------------------------------------------------------------------ bulk
async def _wait_indexed(op_id: str, timeout_s: float = 600) -> dict | None:
    svc = _svc()
    deadline = time.monotonic() + timeout_s
    while True:
        view = await svc.wait_indexed(op_id)
        if view is None or view["status"] != "indexing" or time.monotonic() > deadline:
            return view
        await asyncio.sleep(0.05)


async def run_bulk(actions: list[es_bulk.Action], may_write=None) -> list[dict]:
    """Apply actions in order (see bulk.plan_bulk); returns once they are indexed (searchable).
    `may_write(index)` (a scoped API key's check): an action on another index fails alone, 403."""
    svc = _svc()
    reason = overload(await svc.tracker.admission(""), svc.settings)
    if reason:
        raise ElasticError(429, "es_rejected_execution_exception", reason)
    ids: dict[str, set[str]] = {}
    for action in actions:
        if action.error or action.index is None:
            continue
        try:
            _check_index(action.index)
            validation.check_index_name(action.index)
        except (ElasticError, InvalidRequest) as exc:
            action.error = (400, "invalid_index_name_exception", getattr(exc, "reason", str(exc)))
            continue
        if may_write is not None and not may_write(action.index):
            action.error = (403, "security_exception",
                            f"action [documents.write] is unauthorized for this API key on index [{action.index}]")
            continue
        wanted = ids.setdefault(action.index, set())
        if action.id is not None:
            wanted.add(action.id)
        elif isinstance(action.source, dict) and isinstance(action.source.get("id"), (str, int)):
            wanted.add(str(action.source["id"]))
    existing: dict[str, set[str]] = {}
    types: dict[str, tuple] = {}  # index -> (typed fields, vector fields)
    for index, wanted in ids.items():
        _, target = await svc.ensure_index(index, {"analyzer": es_bulk.STANDARD})  # as ES auto-creates
        types[index] = (target.types, target.vectors)
        existing[index] = set(await svc.fetch(target, sorted(wanted))) if wanted else set()

    def check(index: str, doc: dict) -> str | None:
        _, _, reason = validation.validate_document(doc, svc.settings.max_doc_bytes)
        return reason or schema.type_error(doc, *types[index])

    plans, items = es_bulk.plan_bulk(actions, lambda index, doc_id: doc_id in existing.get(index, ()), check)
    failed: dict[str, str] = {}
    for index, plan in plans.items():
        if not plan.docs and not plan.deletes:
            continue
        accepted = await svc.submit(index, list(plan.docs.values()), sorted(plan.deletes), [], kind="bulk")
        view = await _wait_indexed(accepted["operation_id"])
        for err in (view or {}).get("errors", []):
            if err.get("id") is not None:
                failed[(index, err["id"])] = err.get("reason", "indexing failed")
    if failed:
        for item in items:
            (op, body), = item.items()
            reason = failed.get((body["_index"], body["_id"]))
            if reason and "error" not in body:
                item[op] = {"_index": body["_index"], "_id": body["_id"], "status": 500,
                            "error": {"type": "exception", "reason": reason, "index": body["_index"]}}
    return items


@router.post("/_bulk")
@router.put("/_bulk")
async def bulk_all(request: Request):
    return await _bulk(request, None)


@router.post("/{index}/_bulk")
@router.put("/{index}/_bulk")
async def bulk_index(index: str, request: Request):
    return await _bulk(request, _check_index(index))


async def _bulk(request: Request, index: str | None):
    started = time.perf_counter()
    actions = es_bulk.parse_bulk(await _body(request), index)
    principal = getattr(request.state, "principal", None)
    may_write = None if principal is None else (lambda name: principal.may("documents.write", name))
    items = await run_bulk(actions, may_write)
    return es_bulk.bulk_response(items, (time.perf_counter() - started) * 1000)


# ------------------------------------------------------------------ refresh
@router.post("/_refresh")
@router.get("/_refresh")
async def refresh_all():
    return await _refresh(None)


@router.post("/{index}/_refresh")
@router.get("/{index}/_refresh")
async def refresh_index(index: str):
    await _meta(index)
    return await _refresh(index)


async def _refresh(index: str | None, timeout_s: float = 600):
    """Searchable once indexed: wait until no batch of the index (of any index) is pending,
    i.e. every operation accepted before the refresh is indexed (or failed)."""
    svc = _svc()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        flight = await svc.in_flight()
        parts = [flight.get(index, {})] if index is not None else list(flight.values())
        if not sum(p.get("batches_pending", 0) for p in parts):
            break
        await asyncio.sleep(0.05)
    return {"_shards": responses.shards(1)}


# ------------------------------------------------------------------ indices
@router.put("/{index}")
async def create_index(index: str, request: Request):
    _check_index(index)
    svc = _svc()
    body = await _json(request, "create index body")
    settings = es_bulk.index_settings(body, svc.settings.shards)
    validation.check_index_name(index)
    try:
        await svc.create_index(index, settings)
    except RaySearchError as exc:
        if exc.type == "already_exists":
            raise ElasticError(400, "resource_already_exists_exception",
                               f"index [{index}/{index}] already exists", index=index, index_uuid=index) from None
        raise
    return {"acknowledged": True, "shards_acknowledged": True, "index": index}


@router.delete("/{index}")
async def delete_index(index: str, request: Request):
    ignore_unavailable = _flag(request, "ignore_unavailable")
    try:
        await _meta(index)
    except ElasticError as exc:
        if exc.status == 404 and ignore_unavailable:
            return {"acknowledged": True}
        raise
    await _svc().delete_index(index)
    return {"acknowledged": True}


@router.head("/{index}")
async def index_exists(index: str):
    await _meta(index)
    return {}


@router.get("/{index}")
async def get_index(index: str):
    meta, _ = await _meta(index)
    view, _ = await _view(index)
    settings = meta["settings"]
    return {index: {"aliases": {}, "mappings": responses.mapping(settings, view.text_fields),
                    "settings": responses.index_settings(index, settings)}}


@router.get("/{index}/_mapping")
async def get_mapping(index: str):
    meta, _ = await _meta(index)
    view, _ = await _view(index)
    return {index: {"mappings": responses.mapping(meta["settings"], view.text_fields)}}


@router.put("/{index}/_mapping")
@router.post("/{index}/_mapping")
async def put_mapping(index: str, request: Request):
    meta, _ = await _meta(index)
    body = await _json(request, "mapping body")
    unknown = set(body) - {"properties", "dynamic", "_source", "_meta"}
    if unknown:
        raise unsupported(f"the mapping option [{sorted(unknown)[0]}]")
    fields, english = es_bulk.mapping_fields(body.get("properties") or {})
    current = (meta["settings"].get("analyzer") or {}).get("stemming") == "english"
    if english and not current:
        raise unsupported("adding an english-analysed field to an index created with the standard analyzer")
    if fields:
        await _svc().put_fields(index, fields)
    return {"acknowledged": True}


# ------------------------------------------------------------------ documents
def _source_params(request: Request):
    params = request.query_params
    return responses.source_spec(params.get("_source", True), params.get("_source_includes"),
                                 params.get("_source_excludes"))


@router.get("/{index}/_doc/{doc_id}")
@router.head("/{index}/_doc/{doc_id}")
async def get_doc(index: str, doc_id: str, request: Request):
    _, target = await _meta(index)
    docs = await _svc().fetch(target, [doc_id])
    if doc_id not in docs:
        return JSONResponse({"_index": index, "_id": doc_id, "found": False}, status_code=404)
    out = {"_index": index, "_id": doc_id, "_version": 1, "_seq_no": 0, "_primary_term": 1, "found": True}
    src = responses.filter_source(responses.source(docs[doc_id]), _source_params(request))
    if src is not None:
        out["_source"] = src
    return out


@router.get("/{index}/_source/{doc_id}")
async def get_source(index: str, doc_id: str, request: Request):
    _, target = await _meta(index)
    docs = await _svc().fetch(target, [doc_id])
    if doc_id not in docs:
        raise ElasticError(404, "resource_not_found_exception", f"Document not found [{index}]/[{doc_id}]")
    return responses.filter_source(responses.source(docs[doc_id]), _source_params(request)) or {}


async def _one(action: es_bulk.Action) -> JSONResponse:
    (item,) = await run_bulk([action])
    (_, body), = item.items()
    status = body.pop("status")
    if "error" in body and status != 404 or (status == 404 and action.op != "delete"):
        err = body["error"]
        raise ElasticError(status, err["type"], err["reason"], index=action.index)
    return JSONResponse(body, status_code=status)


@router.put("/{index}/_doc/{doc_id}")
@router.post("/{index}/_doc/{doc_id}")
async def index_doc(index: str, doc_id: str, request: Request):
    _check_index(index)
    op = _op_type(request)
    return await _one(es_bulk.Action(op, index, doc_id, await _json(request, "document")))


@router.post("/{index}/_doc")
async def index_doc_new_id(index: str, request: Request):
    _check_index(index)
    _op_type(request)  # a new id: either op_type creates it
    return await _one(es_bulk.Action("index", index, None, await _json(request, "document")))


@router.put("/{index}/_create/{doc_id}")
@router.post("/{index}/_create/{doc_id}")
async def create_doc(index: str, doc_id: str, request: Request):
    _check_index(index)
    return await _one(es_bulk.Action("create", index, doc_id, await _json(request, "document")))


@router.post("/{index}/_update/{doc_id}")
async def update_doc(index: str, doc_id: str, request: Request):
    _check_index(index)
    return await _one(es_bulk.Action("update", index, doc_id, await _json(request, "update body")))


@router.delete("/{index}/_doc/{doc_id}")
async def delete_doc(index: str, doc_id: str):
    await _meta(index)
    return await _one(es_bulk.Action("delete", index, doc_id))


# ------------------------------------------------------------------ search
_SEARCH_PARAMS = {"q", "df", "default_operator", "from", "size", "sort", "_source", "_source_includes",
                  "_source_excludes", "track_total_hits", "rest_total_hits_as_int", "track_scores"}
_IGNORED_PARAMS = {"pretty", "human", "error_trace", "filter_path", "typed_keys", "ignore_unavailable",
                   "allow_no_indices", "expand_wildcards", "search_type", "request_cache", "timeout",
                   "allow_partial_search_results", "ccs_minimize_roundtrips", "batched_reduce_size",
                   "preference", "routing", "max_concurrent_shard_requests", "pre_filter_shard_size",
                   "ignore_throttled", "include_named_queries_score"}
_BOOLEAN_PARAMS = {"rest_total_hits_as_int", "typed_keys", "ignore_unavailable", "allow_no_indices",
                   "request_cache", "allow_partial_search_results", "ccs_minimize_roundtrips",
                   "ignore_throttled", "include_named_queries_score", "error_trace"}


def _search_body(request: Request, body: dict) -> dict:
    params = request.query_params
    for name in params:
        if name not in _SEARCH_PARAMS and name not in _IGNORED_PARAMS:
            raise unsupported(f"the search parameter [{name}]")
    body = dict(body)
    if "q" in params:
        if "query" in body:
            raise parsing("q and a query in the body cannot both be given")
        qs: dict[str, Any] = {"query": params["q"]}
        if "df" in params:
            qs["default_field"] = params["df"]
        if "default_operator" in params:
            qs["default_operator"] = params["default_operator"]
        body["query"] = {"query_string": qs}
    for name in ("from", "size"):
        if name in params:
            body[name] = decoding.query_int(name, params[name])
    if "sort" in params:
        body["sort"] = [s for s in params["sort"].split(",") if s]
    if "track_total_hits" in params:
        v = params["track_total_hits"].lower()
        body["track_total_hits"] = v in ("true", "") if v in ("true", "false", "") else decoding.query_int(
            "track_total_hits", v)
    if "track_scores" in params:
        body["track_scores"] = _flag(request, "track_scores")
    for name in _BOOLEAN_PARAMS & set(params):  # ignored, but a value Elasticsearch refuses is refused
        _flag(request, name)
    return body


async def _run_search(index: str, body: dict):
    from raysearch.models import SearchRequest

    view, meta = await _view(index)
    translated = translate_search(body, view)
    try:
        search_request = SearchRequest(**translated["request"])
    except Exception as exc:
        raise parsing(validation.pydantic_reason(exc)) from None
    result = await _svc().search(index, search_request)
    return translated, result, view, meta


@router.get("/{index}/_search")
@router.post("/{index}/_search")
async def search(index: str, request: Request):
    started = time.perf_counter()
    _check_index(index)
    body = _search_body(request, await _json(request, "search body"))
    params = request.query_params
    source_filter = responses.source_spec(body.get("_source", True) if "_source" not in params else params["_source"],
                                          params.get("_source_includes"), params.get("_source_excludes"))
    translated, result, view, meta = await _run_search(index, body)
    out = responses.search_response(index, result, translated, source_filter,
                                    (time.perf_counter() - started) * 1000, view.types, meta["shards"])
    if _flag(request, "rest_total_hits_as_int") and "total" in out["hits"]:
        out["hits"]["total"] = out["hits"]["total"]["value"]
    return out


@router.get("/{index}/_count")
@router.post("/{index}/_count")
async def count(index: str, request: Request):
    _check_index(index)
    body = await _json(request, "count body")
    unknown = set(body) - {"query"}
    if unknown:
        raise parsing(f"request does not support [{sorted(unknown)[0]}]")
    params = request.query_params
    if "q" in params:
        body = {"query": {"query_string": {"query": params["q"], **({"default_field": params["df"]}
                                                                    if "df" in params else {})}}}
    body["size"] = 0
    translated, result, _, meta = await _run_search(index, body)
    return {"count": result["total"], "_shards": responses.shards(meta["shards"])}


# ------------------------------------------------------------------ anything else
@router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"])
async def unknown(path: str, request: Request):
    raise ElasticError(400, "illegal_argument_exception",
                       f"raysearch's Elasticsearch API does not support [{request.method} /{path}] "
                       f"(no handler found for this uri and method)")
