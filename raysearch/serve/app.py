"""The HTTP API (docs/api.md) as a FastAPI app inside a Ray Serve deployment."""


import os
from typing import Optional

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from ray import serve

from raysearch import access
from raysearch.app.keys import KeyRing
from raysearch.app.service import SearchService
from raysearch.config import Settings
from raysearch.errors import InvalidRequest, PayloadTooLarge, RaySearchError
from raysearch.models import SearchRequest
from raysearch.ingest import decoding
from raysearch.ingest.validation import pydantic_reason
from raysearch.serve import auth, ui
from raysearch.serve.readiness import ReadinessProbe
from raysearch.status import Readiness

api = FastAPI(title="raysearch", version="0.1.0", description="Full-text search on Ray: bulk indexing, BM25 search.",
              dependencies=[Depends(auth.authorize)])


@api.exception_handler(RaySearchError)
async def _raysearch_error(_: Request, exc: RaySearchError):
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    return JSONResponse(exc.to_json(), status_code=exc.status, headers=headers)


@api.exception_handler(Exception)
async def _unexpected(_: Request, exc: Exception):
    """Anything that is not a RaySearchError is a bug of ours (MongoDB outages arrive as
    MongoUnavailable from the storage layer: errors.py maps every status)."""
    return JSONResponse({"error": {"type": "internal_error", "reason": f"{type(exc).__name__}: {exc}"}}, status_code=500)


from fastapi.exceptions import RequestValidationError  # noqa: E402
from starlette.exceptions import HTTPException as _HTTPException  # noqa: E402

_HTTP_ERROR_TYPES = {404: "not_found", 405: "method_not_allowed"}


@api.exception_handler(_HTTPException)
async def _http_error(_: Request, exc: _HTTPException):
    """Starlette's own answers (no such route, method not allowed) in the documented error shape."""
    reason = {404: "no such route", 405: "method not allowed on this route"}.get(exc.status_code, str(exc.detail))
    return JSONResponse({"error": {"type": _HTTP_ERROR_TYPES.get(exc.status_code, "http_error"), "reason": reason}},
                        status_code=exc.status_code, headers=getattr(exc, "headers", None))


@api.exception_handler(RequestValidationError)
async def _validation_error(_: Request, exc: RequestValidationError):
    reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return JSONResponse(InvalidRequest(reasons).to_json(), status_code=400)


api.add_middleware(auth.APIKeyMiddleware)

from raysearch.elastic import routes as elastic  # noqa: E402  (the /_elastic API, bound in Ingress.__init__)

api.include_router(elastic.router)


_UI_FILES = ui.files()  # the search page (serve/ui/), read once


def _ui_file(name: str) -> Response:
    if name not in _UI_FILES:
        raise _HTTPException(404)
    content, media_type = _UI_FILES[name]
    return Response(content, media_type=media_type, headers=ui.SECURITY_HEADERS)


def _json(content: dict) -> Response:
    """A search answer encoded by orjson: FastAPI's own path (jsonable_encoder, then json)
    took 150 us for a page of ten Debian documents, orjson 2 us."""
    try:
        body = orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:  # something orjson does not take: the standard way
        return JSONResponse(content)
    return Response(body, media_type="application/json")


def _search_request(params: dict) -> SearchRequest:
    try:
        return SearchRequest(**params)
    except Exception as exc:
        raise InvalidRequest(pydantic_reason(exc)) from None


# Typed query parameters of GET .../search, decoded strictly (ingest/decoding.py).
_SEARCH_INT_PARAMS = ("from", "size")
_SEARCH_BOOL_PARAMS = ("highlight", "explain")
_SEARCH_ENUM_PARAMS = {"operator": ("or", "and")}


def _search_params(request: Request) -> dict:
    params = {}
    for name, value in request.query_params.multi_items():
        if name in params:
            raise InvalidRequest(f"query parameter {name!r} is given more than once")
        params[name] = value
    for name in _SEARCH_INT_PARAMS:
        if name in params:
            params[name] = decoding.query_int(name, params[name])
    for name in _SEARCH_BOOL_PARAMS:
        if name in params:
            params[name] = decoding.query_bool(name, params[name])
    for name, allowed in _SEARCH_ENUM_PARAMS.items():
        if name in params:
            params[name] = decoding.query_enum(name, params[name], allowed)
    for name in ("filter", "sort", "facets", "search_after"):  # URL-encoded JSON on GET
        if name in params:
            params[name] = decoding.loads(params[name].encode(), f"query parameter {name!r}")
    return params


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=256)
@serve.ingress(api)
class Ingress:
    def __init__(self, settings: Optional[dict] = None):
        resolved = Settings(**(settings or {})) if not isinstance(settings, Settings) else settings
        if resolved.api_key:
            os.environ["RAYSEARCH_API_KEY"] = resolved.api_key
        self.service = SearchService(resolved)
        self.readiness = ReadinessProbe(self.service.check_ready)
        self.keys = KeyRing(self.service.mongo, resolved.api_key)
        auth.bind(self.keys)
        elastic.bind(self.service)

    # the search page (serve/ui/): public, its API calls carry the key
    @api.get("/", include_in_schema=False)
    async def root(self, request: Request):
        """A browser goes to the search page; any other caller gets the 404 it always got."""
        if "text/html" in request.headers.get("accept", ""):
            return RedirectResponse(request.scope.get("root_path", "") + "/ui", status_code=307)
        raise _HTTPException(404)

    @api.get("/ui", include_in_schema=False)
    async def ui_page(self):
        return _ui_file(ui.PAGE)

    @api.get("/ui/{file}", include_in_schema=False)
    async def ui_asset(self, file: str):
        return _ui_file(file)

    @api.get("/healthz")
    async def healthz(self):
        return {"status": "ok"}

    @api.get("/readyz")
    async def readyz(self):
        state, reason = await self.readiness.result()
        if state is not Readiness.READY:
            return JSONResponse({"status": "unavailable", "state": state.value, "reason": reason,
                                 "error": {"type": "unavailable", "reason": reason}}, status_code=503)
        return {"status": "ready", "state": state.value}

    @api.get("/stats")
    async def stats(self):
        return await self.service.stats()

    # indexes
    @api.get("/indexes")
    async def list_indexes(self, request: Request):
        listing = await self.service.list_indexes()
        principal = auth.principal_of(request)
        listing["indexes"] = [entry for entry in listing["indexes"] if principal.sees(entry["index"])]
        return listing

    @api.put("/indexes/{index}", status_code=201)
    async def create_index(self, index: str, request: Request):
        settings = decoding.json_object(await self._body(request), "index settings", empty_ok=True)
        return await self.service.create_index(index, settings)

    @api.put("/indexes/{index}/fields")
    async def put_fields(self, index: str, request: Request):
        """Declare typed fields later (same body as the settings' `fields`)."""
        body = decoding.json_object(await self._body(request), "fields")
        return await self.service.put_fields(index, body)

    @api.get("/indexes/{index}")
    async def index_info(self, index: str):
        return await self.service.index_info(index)

    @api.delete("/indexes/{index}")
    async def delete_index(self, index: str):
        return await self.service.delete_index(index)

    # snapshots (app/snapshots.py)
    @api.post("/indexes/{index}/snapshot")
    async def snapshot(self, index: str, request: Request):
        """{"path": an absolute directory on the service's host, absent or empty}."""
        body = decoding.json_object(await self._body(request), "snapshot")
        path = body.get("path")
        if not isinstance(path, str) or not path:
            raise InvalidRequest('expected {"path": "/absolute/directory"} (on the service\'s host)')
        return await self.service.snapshot(index, path)

    @api.post("/snapshots/restore", status_code=201)
    async def restore_snapshot(self, request: Request):
        """{"path": a snapshot's directory, "index": the new index's name (default: the snapshot's)}."""
        body = decoding.json_object(await self._body(request), "restore")
        path, name = body.get("path"), body.get("index")
        if not isinstance(path, str) or not path or (name is not None and not isinstance(name, str)):
            raise InvalidRequest('expected {"path": "/snapshot/directory", "index": "new-name"}')
        return await self.service.restore_snapshot(path, name)

    # reindex (app/reindex.py)
    @api.post("/indexes/{index}/reindex", status_code=202)
    async def reindex(self, index: str, request: Request):
        """{"dest": new index, "settings": its settings, "alias": switched to it at the end (optional)}."""
        body = decoding.json_object(await self._body(request), "reindex")
        principal = auth.principal_of(request)
        for name in (body.get("dest"), body.get("alias")):  # a scoped key manages both ends
            if isinstance(name, str):
                principal.require((access.INDEXES_MANAGE,), name)
        return await self.service.reindex(index, body)

    @api.get("/reindex/{operation_id}")
    async def reindex_status(self, operation_id: str, request: Request):
        view = await self.service.reindex_status(operation_id)
        auth.principal_of(request).require((access.INDEXES_MANAGE,), view["source"])
        return view

    # aliases (app/aliases.py)
    @api.get("/aliases")
    async def list_aliases(self):
        return await self.service.aliases()

    @api.post("/aliases")
    async def update_aliases(self, request: Request):
        """{"actions": [{"add": {"alias", "index"}}, {"remove": {"alias"}}, ...]}, applied atomically."""
        body = decoding.json_object(await self._body(request), "alias actions")
        return await self.service.update_aliases(body.get("actions"))

    @api.put("/aliases/{alias}")
    async def put_alias(self, alias: str, request: Request):
        body = decoding.json_object(await self._body(request), "alias")
        return await self.service.update_aliases([{"add": {"alias": alias, "index": body.get("index")}}])

    @api.delete("/aliases/{alias}")
    async def delete_alias(self, alias: str):
        return await self.service.update_aliases([{"remove": {"alias": alias}}])

    @api.post("/indexes/{index}/verify")
    async def verify(self, index: str, shard: Optional[int] = None):
        return await self.service.verify(index, shard)

    @api.post("/indexes/{index}/restore")
    async def restore(self, index: str, shard: Optional[int] = None):
        return await self.service.restore(index, shard)

    # bulk
    @api.post("/bulk-indexing/{index}", status_code=202)
    async def bulk(self, index: str, request: Request):
        body = await self._body(request)
        return await self.service.bulk(index, body, request.headers.get("content-type", ""))

    @api.get("/bulk-operations")
    async def operations(self, request: Request, index: Optional[str] = None, limit: int = 100,
                         after: Optional[str] = None):
        """A page of operations, newest first; `next` is the `after` of the following page (null at the end).
        A scoped key sees its indexes' operations only."""
        principal = auth.principal_of(request)
        if index is not None:
            principal.require((access.OPERATIONS_READ,), index)
        page = await self.service.operations(index, limit, after)
        page["operations"] = [op for op in page["operations"] if principal.sees(op["index"])]
        return page

    @api.get("/bulk-operations/{operation_id}")
    async def operation(self, operation_id: str, request: Request):
        view = await self.service.operation(operation_id)
        auth.principal_of(request).require((access.OPERATIONS_READ,), view["index"])
        return view

    @api.post("/bulk-operations/{operation_id}/retry", status_code=202)
    async def retry(self, operation_id: str, request: Request):
        view = await self.service.operation(operation_id)
        auth.principal_of(request).require((access.DOCUMENTS_WRITE,), view["index"])
        return await self.service.retry(operation_id)

    # API keys (access.py, app/keys.py)
    @api.post("/keys", status_code=201)
    async def create_key(self, request: Request):
        """A scoped key: `{"actions": [...], "indexes": [...], "expires_at"?, "description"?}`;
        the key itself is in this answer only."""
        body = decoding.json_object(await self._body(request), "key")
        return await self.keys.create(body, auth.principal_of(request))

    @api.get("/keys")
    async def list_keys(self):
        return await self.keys.list()

    @api.delete("/keys/{key_id}")
    async def revoke_key(self, key_id: str):
        return await self.keys.revoke(key_id)

    # documents
    @api.get("/indexes/{index}/documents/{doc_id}")
    async def get_document(self, index: str, doc_id: str):
        return await self.service.get_document(index, doc_id)

    @api.put("/indexes/{index}/documents/{doc_id}")
    async def put_document(self, index: str, doc_id: str, request: Request):
        return await self.service.put_document(index, doc_id, await self._body(request))

    @api.delete("/indexes/{index}/documents/{doc_id}")
    async def delete_document(self, index: str, doc_id: str):
        return await self.service.delete_document(index, doc_id)

    # search
    @api.get("/indexes/{index}/search")
    async def search_get(self, index: str, request: Request):
        return _json(await self.service.search(index, _search_request(_search_params(request))))

    @api.post("/indexes/{index}/search")
    async def search_post(self, index: str, request: Request):
        params = decoding.json_object(await self._body(request), "search body")
        return _json(await self.service.search(index, _search_request(params)))

    async def _body(self, request: Request) -> bytes:
        """The request body, refused (413) before it is read when it declares more than the limit."""
        limit = self.service.settings.max_body_bytes
        declared = decoding.content_length(request.headers.get("content-length"))
        if declared is not None and declared > limit:
            raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit}")
        body = await request.body()
        if len(body) > limit:
            raise PayloadTooLarge(f"request body is {len(body)} bytes; the limit is {limit}")
        return body


def build_app(args: dict | None = None):
    """Typed builder for `serve run serve_config.yaml` (its `args:` become Settings overrides)."""
    settings = Settings.from_env(**(args or {}))
    if not settings.mongo_uri:
        raise ValueError("serve_config needs a MongoDB URI: set RAYSEARCH_MONGO_URI or args.mongo_uri")
    return Ingress.bind(settings.model_dump())
