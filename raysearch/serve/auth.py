"""Who a request comes from, and what it may do: the API key middleware (the admin key or
a scoped key, app/keys.py) and the check every route makes (access.py).

Its state (this replica's KeyRing) lives in this module, bound by Ingress.__init__ through
`bind`: the Serve deployment class is pickled by value, so a global assigned from its
methods would land in a copy; a module is pickled by reference (as elastic.bind)."""

from __future__ import annotations

import hmac
import os

from fastapi import Request
from fastapi.responses import JSONResponse

from raysearch import access
from raysearch.elastic.errors import ElasticError
from raysearch.elastic.responses import PRODUCT_HEADERS
from raysearch.errors import Forbidden, RaySearchError, Unauthorized
from raysearch.serve import ui

_KEYRING: dict = {"ring": None}


def bind(keyring) -> None:
    """This replica's KeyRing (Ingress.__init__)."""
    _KEYRING["ring"] = keyring


async def authorize(request: Request) -> None:
    """Every route's access check (a dependency of the whole app): the key the middleware
    authenticated must hold one of the route's actions (access.ROUTES) on the index the
    path names. Routes whose index is not in the path check it themselves."""
    principal = getattr(request.state, "principal", None)
    if principal is None or principal.is_admin:  # an open service, or the admin key
        return
    template = getattr(request.scope.get("route"), "path", None)
    actions = access.required(request.method, template)
    if actions is None and request.method == "HEAD":
        actions = access.required("GET", template)
    if actions is None:
        raise Forbidden(f"only the admin key may call {request.method} {template}")
    principal.require(actions, request.path_params.get("index"))


def principal_of(request: Request) -> access.Principal:
    """Who sent the request (the admin on an open service)."""
    return getattr(request.state, "principal", None) or access.ADMIN


# Routes open without the API key, by exact (method, path) relative to the app's root
# (Serve may mount the app under a route prefix: `root_path`). Everything else, including
# /docs, /redoc and /openapi.json (the schema of a locked service is not public), needs it.
# The search page is public (the root redirects a browser to it; its files, exactly, under
# /ui/): the page asks for a key and its API calls carry it.
OPEN_ROUTES = frozenset({("GET", "/healthz"), ("GET", "/"), ("GET", "/ui"), ("GET", "/ui/")}
                        | {("GET", "/ui/" + name) for name in ui.NAMES})


class APIKeyMiddleware:
    """Pure ASGI middleware (Starlette's BaseHTTPMiddleware costs ~0.35 ms per request):
    when an API key is set, every request but OPEN_ROUTES needs `Authorization: Bearer <key>`
    with the admin key (compared in constant time) or a scoped key (app/keys.py); who it is
    goes into the request's state, and `authorize` checks what it may do."""

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
            principal = None
            if (hmac.compare_digest(given, b"Bearer " + key.encode())
                    or hmac.compare_digest(given, b"ApiKey " + key.encode())):
                principal = access.ADMIN
            elif _KEYRING["ring"] is not None and given.startswith((b"Bearer rsk_", b"ApiKey rsk_")):
                try:
                    principal = await _KEYRING["ring"].authenticate(given.split(b" ", 1)[1].decode("latin-1"))
                except RaySearchError as exc:  # MongoDB away: say so (middleware runs outside the handlers)
                    response = JSONResponse(exc.to_json(), status_code=exc.status,
                                            headers={"Retry-After": str(exc.retry_after or 1)})
                    return await response(scope, receive, send)
            if principal is None:
                if path == "/_elastic" or path.startswith("/_elastic/"):
                    response = _elastic_unauthorized(path)
                else:
                    body = Unauthorized("missing or wrong 'Authorization: Bearer <key>'").to_json()
                    response = JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})
                return await response(scope, receive, send)
            scope.setdefault("state", {})["principal"] = principal
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
