"""Scoped API keys, the pure part (raysearch/access.py): patterns, actions, the checks of
a new key, and that every route of the app has its action (no Ray)."""

from __future__ import annotations

import re
import time

import pytest

from raysearch import access
from raysearch.errors import Forbidden, InvalidRequest


def test_patterns(no_ray):
    assert access.pattern_matches("shop-*", "shop-eu") and not access.pattern_matches("shop-*", "shopping")
    assert access.pattern_matches("shop", "shop") and not access.pattern_matches("shop", "shop-eu")
    assert access.pattern_matches("*", "anything")
    assert access.pattern_within("shop-eu-*", ("shop-*",)) and access.pattern_within("shop-eu", ("shop-*",))
    assert not access.pattern_within("shop*", ("shop-*",)) and not access.pattern_within("*", ("shop-*",))


def test_a_principal_needs_the_action_on_the_index(no_ray):
    key = access.Principal("k1", frozenset({"search"}), ("shop-*",))
    key.require(("search",), "shop-eu")
    with pytest.raises(Forbidden, match="may not act on index 'shopping'"):
        key.require(("search",), "shopping")
    with pytest.raises(Forbidden, match="lacks the action documents.write"):
        key.require(("documents.write",), "shop-eu")
    key.require(access.ANY_KEY)  # the root, /docs
    access.ADMIN.require(("keys.manage",), "anything")
    star = access.Principal("k2", frozenset({"*"}), ("*",))
    assert star.may("indexes.manage", "x") and star.may("keys.manage")


def test_a_new_key_is_checked_whole_and_never_wider_than_its_creator(no_ray):
    now = time.time()
    fields = access.check_new_key({"actions": ["search", "search"], "indexes": ["shop-*"],
                                   "expires_at": now + 60, "description": "box"}, access.ADMIN, now)
    assert fields == {"actions": ["search"], "indexes": ["shop-*"], "expires_at": now + 60, "description": "box"}
    for body, words in [({"actions": ["fly"]}, "unknown action 'fly'"), ({"actions": []}, "non-empty"),
                        ({"actions": ["search"], "indexes": ["Shop"]}, "invalid index pattern"),
                        ({"actions": ["search"], "expires_at": now - 1}, "in the past"),
                        ({"actions": ["search"], "expires_at": "tomorrow"}, "seconds since the epoch"),
                        ({"actions": ["search"], "owner": "me"}, "unknown field 'owner'")]:
        with pytest.raises(InvalidRequest, match=re.escape(words)):
            access.check_new_key(body, access.ADMIN, now)
    manager = access.Principal("m", frozenset({"keys.manage", "search"}), ("shop-*",))
    access.check_new_key({"actions": ["search"], "indexes": ["shop-eu"]}, manager, now)
    with pytest.raises(Forbidden, match="actions it lacks: documents.write"):
        access.check_new_key({"actions": ["documents.write"], "indexes": ["shop-eu"]}, manager, now)
    with pytest.raises(Forbidden, match="outside its own: \\*"):
        access.check_new_key({"actions": ["search"], "indexes": ["*"]}, manager, now)


def test_keys_are_random_and_only_their_hash_is_compared(no_ray):
    key_id, secret, key = access.new_key()
    assert key == f"rsk_{key_id}_{secret}" and access.split_key(key) == (key_id, secret)
    record = {"_id": key_id, "hash": access.hash_secret(secret), "actions": ["search"], "indexes": ["*"],
              "expires_at": None}
    assert secret not in str(record["hash"]) and access.secret_matches(record, secret)
    assert not access.secret_matches(record, secret + "x")
    assert not access.secret_matches({**record, "expires_at": time.time() - 1}, secret)
    assert access.split_key("Bearer-ish") is None and access.split_key("rsk_nosecret") is None
    assert access.new_key()[2] != key


def test_every_route_of_the_app_has_its_actions(no_ray):
    from fastapi.routing import iter_route_contexts

    from raysearch.serve.app import api

    missing = []
    for context in iter_route_contexts(api.routes):
        for method in context.methods or ():
            if (method, context.path) in (("GET", "/healthz"), ("HEAD", "/healthz")):
                continue
            if method == "HEAD" and access.required("GET", context.path) is not None:
                continue
            if context.path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
                continue  # any valid key (the middleware's check alone)
            if access.required(method, context.path) is None:
                missing.append((method, context.path))
    assert not missing, f"routes without actions (the admin key only): {missing}"
