"""The HTTP API (docs/api.md) as a FastAPI app inside a Ray Serve deployment."""


import hmac
import os
from typing import Optional

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ray import serve

from raysearch.config import Settings
from raysearch.errors import InvalidRequest, PayloadTooLarge, RaySearchError, Unauthorized
from raysearch.models import SearchRequest

api = FastAPI(title="raysearch", version="0.1.0", description="Full-text search on Ray: bulk indexing, BM25 search.")


@api.exception_handler(RaySearchError)
async def _raysearch_error(_: Request, exc: RaySearchError):
    headers = {"Retry-After": "1"} if exc.status == 429 else None
    return JSONResponse(exc.to_json(), status_code=exc.status, headers=headers)


@api.exception_handler(Exception)
async def _unexpected(_: Request, exc: Exception):
    from raysearch.storage.mongo import is_unavailable

    if is_unavailable(exc):
        return JSONResponse({"error": {"type": "mongodb_unavailable", "reason": f"MongoDB unreachable: {exc}"}},
                            status_code=503, headers={"Retry-After": "5"})
    return JSONResponse({"error": {"type": "internal_error", "reason": f"{type(exc).__name__}: {exc}"}}, status_code=500)


from fastapi.exceptions import RequestValidationError  # noqa: E402


@api.exception_handler(RequestValidationError)
async def _validation_error(_: Request, exc: RequestValidationError):
    reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return JSONResponse(InvalidRequest(reasons).to_json(), status_code=400)


@api.middleware("http")
async def _auth(request: Request, call_next):
    # Read per request from this replica's environment (set from Settings in Ingress.__init__):
    # module globals are not shared reliably once Serve has pickled the app.
    key = os.environ.get("RAYSEARCH_API_KEY")
    if key and not request.url.path.endswith("/healthz"):
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {key}".encode()):
            return JSONResponse(Unauthorized("missing or wrong 'Authorization: Bearer <key>'").to_json(), status_code=401)
    return await call_next(request)


def _search_request(params: dict) -> SearchRequest:
    try:
        return SearchRequest(**params)
    except Exception as exc:
        raise InvalidRequest(_pydantic_reason(exc)) from None


def _pydantic_reason(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors())
    return str(exc)


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=256)
@serve.ingress(api)
class Ingress:
    def __init__(self, settings: Optional[dict] = None):
        from raysearch.serve.service import SearchService

        resolved = Settings(**(settings or {})) if not isinstance(settings, Settings) else settings
        if resolved.api_key:
            os.environ["RAYSEARCH_API_KEY"] = resolved.api_key
        self.service = SearchService(resolved)

    @api.get("/healthz")
    async def healthz(self):
        return {"status": "ok"}

    @api.get("/readyz")
    async def readyz(self):
        ok, reason = await self.service.ready()
        if not ok:
            return JSONResponse({"status": "unavailable", "reason": reason,
                                 "error": {"type": "unavailable", "reason": reason}}, status_code=503)
        return {"status": "ready"}

    @api.get("/stats")
    async def stats(self):
        return await self.service.stats()

    # indexes
    @api.get("/indexes")
    async def list_indexes(self):
        return await self.service.list_indexes()

    @api.put("/indexes/{index}", status_code=201)
    async def create_index(self, index: str, request: Request):
        body = await request.body()
        settings = None
        if body.strip():
            import json

            try:
                settings = json.loads(body)
            except ValueError as exc:
                raise InvalidRequest(f"index settings are not valid JSON: {exc}") from None
            if not isinstance(settings, dict):
                raise InvalidRequest("index settings must be a JSON object")
        return self.service.create_index(index, settings)

    @api.get("/indexes/{index}")
    async def index_info(self, index: str):
        return await self.service.index_info(index)

    @api.delete("/indexes/{index}")
    async def delete_index(self, index: str):
        return await self.service.delete_index(index)

    @api.post("/indexes/{index}/verify")
    async def verify(self, index: str):
        return await self.service.verify(index)

    @api.post("/indexes/{index}/restore")
    async def restore(self, index: str, shard: Optional[int] = None):
        return await self.service.restore(index, shard)

    # bulk
    @api.post("/bulk-indexing/{index}", status_code=202)
    async def bulk(self, index: str, request: Request):
        declared = request.headers.get("content-length")
        limit = self.service.settings.max_body_bytes
        if declared and declared.isdigit() and int(declared) > limit:  # refuse before reading it
            raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit}")
        body = await request.body()
        return await self.service.bulk(index, body, request.headers.get("content-type", ""))

    @api.get("/bulk-operations")
    async def operations(self, index: Optional[str] = None):
        return await self.service.operations(index)

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
        return await self.service.put_document(index, doc_id, await request.body())

    @api.delete("/indexes/{index}/documents/{doc_id}")
    async def delete_document(self, index: str, doc_id: str):
        return await self.service.delete_document(index, doc_id)

    # search
    @api.get("/indexes/{index}/search")
    async def search_get(self, index: str, request: Request):
        params = dict(request.query_params)
        if "highlight" in params:
            params["highlight"] = params["highlight"].lower() in ("1", "true", "yes")
        if "q" not in params:
            raise InvalidRequest("missing query parameter 'q'")
        return await self.service.search(index, _search_request(params))

    @api.post("/indexes/{index}/search")
    async def search_post(self, index: str, request: Request):
        import json

        try:
            params = json.loads(await request.body())
        except ValueError as exc:
            raise InvalidRequest(f"search body is not valid JSON: {exc}") from None
        if not isinstance(params, dict):
            raise InvalidRequest("search body must be a JSON object")
        return await self.service.search(index, _search_request(params))


def build_app(args: dict | None = None):
    """Typed builder for `serve run serve_config.yaml` (its `args:` become Settings overrides)."""
    settings = Settings.from_env(**(args or {}))
    if not settings.mongo_uri:
        raise ValueError("serve_config needs a MongoDB URI: set RAYSEARCH_MONGO_URI or args.mongo_uri")
    return Ingress.bind(settings.model_dump())
