"""Scoped API keys (issue 24) on the real service: a copy of the app with an admin key is
deployed beside the suite's service; keys of each scope are made through POST /keys and
tried on every route of the API, the Elasticsearch-compatible one included."""

from __future__ import annotations

import re
import time

import httpx

from raysearch import access
from raysearch.serve.app import Ingress
from tests.integration.helpers import deployed_beside

ADMIN = {"Authorization": "Bearer admin-s3cret"}


def _bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def _make_key(client, base, **body) -> dict:
    r = client.post(base + "/keys", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    return r.json()


def _routes(client, base) -> list[tuple[str, str]]:
    """(method, template) of every route the OpenAPI schema lists, and the /_elastic ones."""
    from fastapi.routing import iter_route_contexts

    from raysearch.serve.app import api

    out = []
    for context in iter_route_contexts(api.routes):
        for method in sorted(context.methods or ()):
            if method != "HEAD" and context.path not in ("/healthz", "/docs", "/redoc", "/openapi.json",
                                                          "/docs/oauth2-redirect", "/_elastic/{path:path}"):
                out.append((method, context.path))
    schema = client.get(base + "/openapi.json", headers=ADMIN).json()
    assert {p for p in schema["paths"]} <= {t for _, t in out} | {"/healthz"}
    return out


def test_keys_of_each_scope_on_every_route(service):
    settings = service.settings.model_copy(update={"api_key": "admin-s3cret"})
    with deployed_beside(service, Ingress.bind(settings.model_dump()), "scoped") as base, \
            httpx.Client(timeout=120) as client:
        # data to read: an index the keys may see, and one they may not
        for index in ("shop-eu", "shopping"):
            r = client.post(f"{base}/bulk-indexing/{index}", json=[{"id": "1", "title": "red shoes"}], headers=ADMIN)
            assert r.status_code == 202, r.text
            op = r.json()["operation_id"]
            deadline = time.time() + 120
            while client.get(f"{base}/bulk-operations/{op}", headers=ADMIN).json()["status"] not in (
                    "completed", "partially_completed", "failed") and time.time() < deadline:
                time.sleep(0.2)
        keys = {action: _make_key(client, base, actions=[action], indexes=["shop-*"]) for action in access.ACTIONS}
        listed = client.get(base + "/keys", headers=ADMIN).json()["keys"]
        assert {k["id"] for k in listed} >= {k["id"] for k in keys.values()}
        assert all("hash" not in k and "key" not in k for k in listed)  # never a secret again

        refused = []
        for method, template in _routes(client, base):
            path = re.sub(r"\{index\}", "shop-none", template)
            path = re.sub(r"\{operation_id\}", "no-such-op", path)
            path = re.sub(r"\{key_id\}", "no-such-key", path)
            path = re.sub(r"\{[^}]+\}", "x1", path)
            needed = access.required(method, template)
            for action, key in keys.items():
                r = client.request(method, base + path, headers=_bearer(key["key"]),
                                   content=b"{}" if method in ("POST", "PUT") else None)
                allowed = needed == access.ANY_KEY or action in needed
                if allowed:
                    assert r.status_code not in (401, 403), (method, path, action, r.text)
                else:
                    assert r.status_code == 403, (method, path, action, r.status_code, r.text)
                    reason = (r.json()["error"].get("reason") or str(r.json()["error"])) if method != "HEAD" else ""
                    assert method == "HEAD" or any(a in reason for a in needed), (method, path, reason)
                    refused.append((method, template, action))
        assert len(refused) > 100

        search = _bearer(keys["search"]["key"])
        # a key for shop-* against shop-eu (its own) and shopping (not: the pattern is a prefix with '-')
        assert client.get(f"{base}/indexes/shop-eu/search", params={"q": "shoes"}, headers=search).json()["total"] == 1
        r = client.get(f"{base}/indexes/shopping/search", params={"q": "shoes"}, headers=search)
        assert r.status_code == 403 and "shopping" in r.json()["error"]["reason"]
        r = client.post(f"{base}/_elastic/shopping/_search", json={"query": {"match_all": {}}}, headers=search)
        assert r.status_code == 403 and r.json()["error"]["root_cause"][0]["type"] == "security_exception"
        assert client.post(f"{base}/_elastic/shop-eu/_search", json={}, headers=search).json()["hits"]["total"][
            "value"] == 1
        seen = [i["index"] for i in client.get(f"{base}/indexes", headers=search).json()["indexes"]]
        assert "shop-eu" in seen and "shopping" not in seen and all(i.startswith("shop-") for i in seen)
        # an Elasticsearch bulk naming another index: that action alone fails, 403
        writer = _bearer(keys["documents.write"]["key"])
        body = ('{"index": {"_index": "shop-eu", "_id": "2"}}\n{"title": "blue"}\n'
                '{"index": {"_index": "shopping", "_id": "2"}}\n{"title": "blue"}\n')
        r = client.post(f"{base}/_elastic/_bulk", content=body, headers={**writer, "Content-Type": "application/x-ndjson"})
        items = r.json()["items"]
        assert [item["index"]["status"] for item in items] == [201, 403], items

        # expired, and revoked: 401 at once
        short = _make_key(client, base, actions=["search"], indexes=["*"], expires_at=time.time() + 2)
        assert client.get(f"{base}/indexes/shop-eu/search", headers=_bearer(short["key"])).status_code == 200
        time.sleep(2.5)
        assert client.get(f"{base}/indexes/shop-eu/search", headers=_bearer(short["key"])).status_code == 401
        assert client.delete(f"{base}/keys/{keys['search']['id']}", headers=ADMIN).status_code == 200
        assert client.get(f"{base}/indexes/shop-eu/search", headers=search).status_code == 401
        assert client.delete(f"{base}/keys/{keys['search']['id']}", headers=ADMIN).status_code == 404
        # a key that manages keys cannot make a wider one
        manager = _bearer(keys["keys.manage"]["key"])
        r = client.post(base + "/keys", json={"actions": ["search"], "indexes": ["*"]}, headers=manager)
        assert r.status_code == 403 and "lacks" in r.json()["error"]["reason"]
        for index in ("shop-eu", "shopping", "shop-none"):
            client.delete(f"{base}/indexes/{index}", headers=ADMIN)


def test_keys_need_an_admin_key(http):
    """On an open service (no RAYSEARCH_API_KEY), POST /keys refuses: a key would protect nothing."""
    r = http.post("/keys", json={"actions": ["search"], "indexes": ["*"]})
    assert r.status_code == 400 and "RAYSEARCH_API_KEY" in r.json()["error"]["reason"]


def test_a_revoked_key_is_refused_by_every_replica_once_the_revocation_answers(mongo_server):
    """Two replicas' key rings over one real MongoDB: both have looked the key up (and
    remember it); once one of them acknowledges the revocation, the other refuses it too,
    even a lookup that read the key just before it was deleted and finished after."""
    import asyncio
    import uuid

    from raysearch.app.keys import KeyRing
    from raysearch.storage.mongo import MongoStore

    admin = access.ADMIN
    db = "keys-" + uuid.uuid4().hex[:8]
    stores = [MongoStore(mongo_server.uri, db), MongoStore(mongo_server.uri, db)]
    here, there = KeyRing(stores[0], "admin"), KeyRing(stores[1], "admin")

    async def scenario():
        made = await here.create({"actions": ["search"], "indexes": ["*"]}, admin)
        assert await here.authenticate(made["key"]) and await there.authenticate(made["key"])
        await here.revoke(made["id"])
        assert await here.authenticate(made["key"]) is None
        assert await there.authenticate(made["key"]) is None  # not "within a second": at once

        # a lookup in flight across the revocation: it reads the key, then is slow to return
        made = await here.create({"actions": ["search"], "indexes": ["*"]}, admin)
        read = stores[1].get_key

        def slow_read(key_id):
            record = read(key_id)
            time.sleep(0.6)
            return record

        stores[1].get_key = slow_read
        in_flight = asyncio.create_task(there.authenticate(made["key"]))
        await asyncio.sleep(0.1)
        await here.revoke(made["id"])
        assert await in_flight  # it read the key before the delete
        stores[1].get_key = read
        assert await there.authenticate(made["key"]) is None

    try:
        asyncio.run(scenario())
    finally:
        stores[0].client.drop_database(db)
        for store in stores:
            store.close()
