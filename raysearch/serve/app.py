"""The HTTP API (docs/api.md) as a FastAPI app inside a Ray Serve deployment."""


import hmac
import os
from typing import Optional

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ray import serve

from raysearch.app.service import SearchService
from raysearch.config import Settings
from raysearch.elastic.errors import ElasticError
from raysearch.elastic.responses import PRODUCT_HEADERS
from raysearch.errors import InvalidRequest, PayloadTooLarge, RaySearchError, Unauthorized
from raysearch.models import SearchRequest
from raysearch.ingest import decoding
from raysearch.ingest.validation import pydantic_reason
from raysearch.serve.readiness import ReadinessProbe
from raysearch.status import Readiness

api = FastAPI(title="raysearch", version="0.1.0", description="Full-text search on Ray: bulk indexing, BM25 search.")


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


# Routes open without the API key, by exact (method, path) relative to the app's root
# (Serve may mount the app under a route prefix: `root_path`). Everything else, including
# /docs, /redoc and /openapi.json (the schema of a locked service is not public), needs it.
OPEN_ROUTES = frozenset({("GET", "/healthz")})


class APIKeyMiddleware:
    """Pure ASGI middleware (Starlette's BaseHTTPMiddleware costs ~0.35 ms per request):
    when an API key is set, every request but OPEN_ROUTES needs `Authorization: Bearer <key>`,
    compared in constant time."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        # Read per request from this replica's environment (set from Settings in Ingress.__init__):
        # module globals are not shared reliably once Serve has pickled the app.
        key = os.environ.get("RAYSEARCH_API_KEY")
        path = _route_path(scope)
        if key and (scope["method"], path) not in OPEN_ROUTES:
            given = b""
            for name, value in scope.get("headers") or ():
                if name == b"authorization":
                    given = value
                    break
            # `Bearer <key>`, or `ApiKey <key>` as Elasticsearch clients send it (api_key="<key>")
            if not (hmac.compare_digest(given, b"Bearer " + key.encode())
                    or hmac.compare_digest(given, b"ApiKey " + key.encode())):
                if path == "/_elastic" or path.startswith("/_elastic/"):
                    response = _elastic_unauthorized(path)
                else:
                    body = Unauthorized("missing or wrong 'Authorization: Bearer <key>'").to_json()
                    response = JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})
                return await response(scope, receive, send)
        return await self.app(scope, receive, send)


def _elastic_unauthorized(path: str) -> JSONResponse:
    """401 under /_elastic as Elasticsearch answers it (security_exception, its product header),
    so its clients raise their authentication error (AuthenticationException), never a product check."""
    reason = f"missing or wrong authentication credentials for REST request [{path[:200]}] " \
             f"(Authorization: ApiKey <key> or Bearer <key>)"
    return JSONResponse(ElasticError(401, "security_exception", reason).to_json(), status_code=401,
                        headers={**PRODUCT_HEADERS, "WWW-Authenticate": "ApiKey, Bearer"})


def _route_path(scope) -> str:
    path = scope.get("path") or ""
    root = scope.get("root_path") or ""
    if root and path.startswith(root):
        path = path[len(root):]
    return path or "/"


api.add_middleware(APIKeyMiddleware)

from raysearch.elastic import routes as elastic  # noqa: E402  (the /_elastic API, bound in Ingress.__init__)

api.include_router(elastic.router)


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
        elastic.bind(self.service)

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
    async def list_indexes(self):
        return await self.service.list_indexes()

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
    async def operations(self, index: Optional[str] = None, limit: int = 100, after: Optional[str] = None):
        """A page of operations, newest first; `next` is the `after` of the following page (null at the end)."""
        return await self.service.operations(index, limit, after)

    @api.get("/bulk-operations/{operation_id}")
    async def operation(self, operation_id: str):
        return await self.service.operation(operation_id)

    @api.post("/bulk-operations/{operation_id}/retry", status_code=202)
    async def retry(self, operation_id: str):
        return await self.service.retry(operation_id)

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
        return await self.service.search(index, _search_request(_search_params(request)))

    @api.post("/indexes/{index}/search")
    async def search_post(self, index: str, request: Request):
        params = decoding.json_object(await self._body(request), "search body")
        return await self.service.search(index, _search_request(params))

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
