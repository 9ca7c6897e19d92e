"""Fuzzing: schemathesis generates requests from the app's own OpenAPI schema
(a bounded number per operation); no request may produce a 5xx, and every
error must have the documented {"error": {"type", "reason"}} shape."""

from __future__ import annotations

import time

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings

EXAMPLES_PER_OPERATION = 12


def test_no_server_errors_on_generated_requests(service):
    raw = httpx.get(service.url + "/openapi.json", timeout=30).json()
    raw["servers"] = [{"url": service.url}]
    schema = schemathesis.openapi.from_dict(raw)
    seen = []
    for result in schema.get_all_operations():
        operation = result.ok()
        seen.append(f"{operation.method.upper()} {operation.path}")

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            response = case.call(base_url=service.url, timeout=60)
            assert response.status_code < 500, (case.method, case.formatted_path, case.query, response.text[:500])
            if response.status_code >= 400:
                error = response.json()["error"]
                assert error["type"] and error["reason"], response.text

        check()
    assert len(seen) >= 15, seen


# ----------------------------------------------------------------------------------------
# Beyond the schema: raw bytes and JSON of adversarial shapes (deep nesting, huge numbers,
# lone surrogates, control characters, very long strings and keys, many fields) against
# every endpoint that reads a body or parameters. Zero 5xx; afterwards every document
# indexed before is still there, unchanged, and /readyz is 200.

import json as _json  # noqa: E402

from hypothesis import strategies as st  # noqa: E402

from tests.conftest import wait_operation  # noqa: E402

FUZZ_INDEX = "fuzz-known"
FUZZ_EXAMPLES = 100
KNOWN = [{"id": f"known-{i}", "title": f"fuzzknown document {i}", "n": i, "tags": ["a", "b"]} for i in range(30)]

_leaf_tokens = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.integers(min_value=1, max_value=6000).map(lambda n: "9" * n),  # thousands of digits
    st.sampled_from(["NaN", "-Infinity", "Infinity", "1e400", "-1e-400", "1E+999999", "0.1e", "01", "-", "+1",
                     "true", "false", "null", "tru", "nul"]),
    st.sampled_from(['"\\ud800"', '"\\udfff"', '"a\\ud83d"', '"\\ud83d\\ude00"', '"\\u0000"', '"\\u001b[31m"',
                     '"\\x41"', '"\\u12"', '"\\"', '"\x01"', '"\x7f"', '"\xc2\x85"']),
    st.text(max_size=50).map(_json.dumps),
    st.integers(min_value=0, max_value=300_000).map(lambda n: _json.dumps("x" * n)),  # very long strings
)
_keys = st.one_of(
    st.text(max_size=30).map(_json.dumps),
    st.sampled_from(['"id"', '"$where"', '"a.b"', '""', '"\\u0000"', '"\\ud800"', '"\x01"', '"_all"', '"title"']),
    st.integers(min_value=200, max_value=5000).map(lambda n: _json.dumps("k" * n)),  # very long keys
)


def _nest(depth_and_leaf):
    depth, leaf = depth_and_leaf
    return "[" * depth + leaf + "]" * depth


_values = st.one_of(
    _leaf_tokens,
    st.tuples(st.integers(min_value=1, max_value=5000), _leaf_tokens).map(_nest),  # deep nesting
    st.tuples(st.integers(min_value=1, max_value=3000), _leaf_tokens).map(
        lambda d: '{"a":' * d[0] + d[1] + "}" * d[0]),
)


@st.composite
def _objects(draw, with_id: bool = True):
    fields = draw(st.lists(st.tuples(_keys, _values), max_size=6))
    if draw(st.booleans()):  # many fields
        fields += [(_json.dumps(f"f{i}"), '"v"') for i in range(draw(st.integers(min_value=100, max_value=3000)))]
    if with_id:
        doc_id = draw(st.one_of(st.text(max_size=20).filter(lambda s: not s.startswith("known-")).map(_json.dumps),
                                st.sampled_from(['"\\ud800"', '"a\\u0000b"', '"\x01"', "1", "null", '""'])))
        fields.insert(draw(st.integers(min_value=0, max_value=len(fields))), ('"id"', doc_id))
    return "{" + ",".join(f"{k}:{v}" for k, v in fields) + "}"


_json_bodies = st.one_of(_objects(), _values, st.lists(_objects(), max_size=5).map(lambda l: "[" + ",".join(l) + "]"),
                         st.tuples(st.lists(_objects(), max_size=3), _values).map(
                             lambda t: '{"documents":[' + ",".join(t[0]) + '],"webhook":' + t[1] + "}"))
_raw = st.one_of(st.binary(max_size=2000), _json_bodies.map(lambda s: s.encode("utf-8", "surrogatepass")),
                 st.tuples(_json_bodies, st.binary(max_size=8)).map(
                     lambda t: t[0].encode("utf-8", "surrogatepass") + t[1]))
_params = st.dictionaries(st.sampled_from(["q", "from", "size", "fields", "operator", "highlight", "x", "q\x00"]),
                          st.one_of(st.text(max_size=40), st.sampled_from(["9" * 5000, "-1", "1e9", "yes", "AND"]),
                                    st.integers(min_value=0, max_value=20_000).map(lambda n: "a " * n)),
                          max_size=6)


def _check(response):
    assert response.status_code < 500, (response.request.method, str(response.request.url)[:200],
                                        response.status_code, response.text[:500])
    if len(str(response.request.url)) > 8000 and response.status_code in (400, 414, 431):
        return  # Serve's HTTP proxy (uvicorn/h11) refuses an over-long request line before the app sees it
    if response.status_code >= 400 and response.request.method != "HEAD":
        error = response.json()["error"]
        assert error["type"] and error["reason"], response.text


_fuzz = settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


def test_zz_adversarial_bodies_and_parameters(service, http):
    op = wait_operation(http, http.post(f"/bulk-indexing/{FUZZ_INDEX}", json=KNOWN).json()["operation_id"])
    assert op["status"] == "completed", op
    headers = [{"Content-Type": "application/json"}, {"Content-Type": "application/x-ndjson"}, {}]

    @_fuzz
    @given(body=_raw, header=st.sampled_from(headers))
    def bulk(body, header):
        _check(http.post(f"/bulk-indexing/{FUZZ_INDEX}", content=body, headers=header))

    @_fuzz
    @given(body=_raw, doc_id=st.text(min_size=1, max_size=30).filter(lambda s: not s.startswith("known-")))
    def put_and_delete_document(body, doc_id):
        from urllib.parse import quote

        path = f"/indexes/{FUZZ_INDEX}/documents/{quote(doc_id, safe='')}"
        _check(http.put(path, content=body, headers={"Content-Type": "application/json"}))
        _check(http.delete(path))

    @_fuzz
    @given(body=_raw, name=st.sampled_from([FUZZ_INDEX, "fuzz-settings", "Bad Name", "healthz"]))
    def put_index_settings(body, name):
        r = http.put(f"/indexes/{name}", content=body, headers={"Content-Type": "application/json"})
        _check(r)
        if r.status_code == 201:
            _check(http.delete(f"/indexes/{name}"))

    @_fuzz
    @given(params=_params, body=_raw)
    def search(params, body):
        _check(http.get(f"/indexes/{FUZZ_INDEX}/search", params=params))
        _check(http.post(f"/indexes/{FUZZ_INDEX}/search", content=body, headers={"Content-Type": "application/json"}))

    started = time.time()
    for target in (bulk, put_and_delete_document, put_index_settings, search):
        target()
    assert time.time() - started < 600
    for doc in KNOWN:
        r = http.get(f"/indexes/{FUZZ_INDEX}/documents/{doc['id']}")
        assert r.status_code == 200 and r.json()["document"] == doc, r.text
    found = http.get(f"/indexes/{FUZZ_INDEX}/search", params={"q": "fuzzknown", "size": 100}).json()
    assert {h["id"] for h in found["hits"]} >= {d["id"] for d in KNOWN}
    deadline = time.time() + 60
    while http.get("/readyz").status_code != 200 and time.time() < deadline:
        time.sleep(0.5)
    assert http.get("/readyz").status_code == 200, http.get("/readyz").text
