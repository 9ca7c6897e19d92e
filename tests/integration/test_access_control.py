"""RAYSEARCH_API_KEY / Settings.api_key: every route but GET /healthz needs the bearer token
(by exact route, not by suffix: DELETE /indexes/healthz is not open).

Deploys a second copy of the app, with a key, beside the test suite's service."""

from __future__ import annotations

import httpx
import pytest

from raysearch.serve.app import Ingress
from tests.integration.helpers import deployed_beside


def test_api_key_protects_every_endpoint_but_healthz(service):
    settings = service.settings.model_copy(update={"api_key": "s3cret-key"})
    with deployed_beside(service, Ingress.bind(settings.model_dump()), "secured") as base:
        assert httpx.get(base + "/healthz").status_code == 200
        for method, path in [("GET", "/readyz"), ("GET", "/indexes"), ("POST", "/bulk-indexing/x"),
                             ("GET", "/indexes/x/search?q=a"), ("GET", "/stats")]:
            r = httpx.request(method, base + path, timeout=30)
            assert r.status_code == 401, (path, r.text)
            assert r.json()["error"]["type"] == "unauthorized"
            wrong = httpx.request(method, base + path, headers={"Authorization": "Bearer nope"}, timeout=30)
            assert wrong.status_code == 401
        ok = httpx.get(base + "/indexes", headers={"Authorization": "Bearer s3cret-key"}, timeout=30)
        assert ok.status_code == 200


METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")
PATH_VALUES = ("healthz", "readyz", "docs", "openapi.json", "x", "..%2Fhealthz", "_search", "_elastic")
EXTRA_PATHS = ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect", "/healthz/", "/HEALTHZ", "//healthz",
               "/x/healthz", "/indexes/healthz", "/bulk-indexing/healthz", "/", "/nope",
               "/_elastic", "/_elastic/", "/_elastic/healthz", "/_elastic//healthz", "/_elastic/x/_doc/healthz")


def _route_templates(app) -> set[str]:
    """Every route of the FastAPI app, walked from the app itself (not its OpenAPI schema, which
    leaves out /docs, /openapi.json and the hidden /_elastic routes); included routers too."""
    try:
        from fastapi.routing import iter_route_contexts  # FastAPI >= 0.130 includes routers lazily
    except ImportError:
        return {route.path for route in app.routes if hasattr(route, "path")}
    return {context.path for context in iter_route_contexts(app.routes)}


def test_every_route_and_method_needs_the_key_but_get_healthz_and_the_page(service):
    import re

    from elasticsearch import AuthenticationException, Elasticsearch

    from raysearch.serve.app import api
    from raysearch.serve.auth import OPEN_ROUTES

    settings = service.settings.model_copy(update={"api_key": "s3cret-key"})
    opened, walked_elastic = [], set()
    with deployed_beside(service, Ingress.bind(settings.model_dump()), "locked") as base:
        with httpx.Client(timeout=30) as client:
            schema = client.get(base + "/openapi.json", headers={"Authorization": "Bearer s3cret-key"}).json()
            templates = _route_templates(api)
            assert set(schema["paths"]) <= templates and len(schema["paths"]) >= 12, sorted(templates)
            elastic = {t for t in templates if t == "/_elastic" or t.startswith("/_elastic/")}
            assert {"/_elastic/", "/_elastic/{index}/_search", "/_elastic/_bulk", "/_elastic/{path:path}"} <= elastic
            paths = set(EXTRA_PATHS)
            for template in sorted(templates):
                for value in PATH_VALUES:
                    paths.add(re.sub(r"\{[^}]+\}", value, template))
            for path in sorted(paths):
                for method in METHODS:
                    r = client.request(method, base + path)
                    if (method, path) == ("GET", "/healthz"):
                        assert r.status_code == 200, r.text
                        continue
                    if (method, path) in OPEN_ROUTES:  # the search page: public; its API calls carry the key
                        assert r.status_code in (200, 307, 404), (path, r.status_code)
                        continue
                    if r.status_code != 401:
                        opened.append((method, path, r.status_code))
                        continue
                    if path.startswith("/_elastic"):  # Elasticsearch's shape, so its clients see a 401
                        walked_elastic.add(path)
                        assert r.headers["x-elastic-product"] == "Elasticsearch", (method, path)
                        if method != "HEAD":
                            assert r.json()["error"]["root_cause"][0]["type"] == "security_exception", r.text
                    elif method != "HEAD":
                        assert r.json()["error"]["type"] == "unauthorized"
            assert not opened, opened[:20]
            assert len(walked_elastic) >= len(elastic), sorted(walked_elastic)
            # with the key, the schema and docs are served, and the API answers
            key = {"Authorization": "Bearer s3cret-key"}
            assert client.get(base + "/openapi.json", headers=key).status_code == 200
            assert client.get(base + "/docs", headers=key).status_code == 200
            assert client.delete(base + "/indexes/healthz", headers=key).status_code == 404
            assert client.get(base + "/healthz", headers={"Authorization": "Bearer wrong"}).status_code == 200
            assert client.get(base + "/_elastic/", headers=key).json()["tagline"] == "You Know, for Search"
        # The Elasticsearch client: its product check (GET /) never passes without the key (a 401
        # raises AuthenticationException before any product check), and passes with api_key=<key>.
        for anonymous in (Elasticsearch(base + "/_elastic", request_timeout=30),
                          Elasticsearch(base + "/_elastic", api_key="wrong", request_timeout=30)):
            with anonymous:
                with pytest.raises(AuthenticationException) as info:
                    anonymous.info()
                assert info.value.meta.status == 401 and info.value.error == "security_exception"
                assert anonymous.ping() is False
                with pytest.raises(AuthenticationException):
                    anonymous.search(index="x", q="a")
        with Elasticsearch(base + "/_elastic", api_key="s3cret-key", request_timeout=30) as keyed:
            assert keyed.info()["version"]["number"].startswith("9.")
            assert keyed.ping() is True


@pytest.mark.parametrize("limit", ["max_pending_batches", "max_unpersisted_batches"])
def test_saturated_cluster_answers_429_with_retry_after(service, limit):
    """Backpressure: past max_pending_batches (batches not yet indexed) or past
    max_unpersisted_batches (indexed, not yet persisted) a bulk is refused with 429 +
    Retry-After, nothing queued."""
    settings = service.settings.model_copy(update={limit: 0})
    with deployed_beside(service, Ingress.bind(settings.model_dump()), "throttled") as base:
        r = httpx.post(base + "/bulk-indexing/throttled-index", json=[{"id": "a", "title": "x"}], timeout=30)
        assert r.status_code == 429, r.text
        reason = r.json()["error"]["reason"]
        assert int(r.headers["Retry-After"]) >= 1 and "retry" in reason
        assert ("persisted" in reason) == (limit == "max_unpersisted_batches"), reason
        assert httpx.get(base + "/indexes/throttled-index", timeout=30).status_code == 404  # nothing accepted
