"""The decoding layer (ingest/decoding.py) and webhook checks: what each hostile input becomes."""

from __future__ import annotations

import pytest

from raysearch.errors import InvalidJSON, InvalidRequest
from raysearch.ingest import decoding, validation

HOSTILE_BODIES = {
    "deep nesting": (b"[" * 100_000 + b"]" * 100_000, "nested deeper than 1024"),
    "lone surrogate": (b'{"a": "\\ud800"}', "surrogate"),
    "lone low surrogate in a key": (b'{"\\udc00": 1}', "surrogate"),
    "thousands of digits": (b'{"a": ' + b"9" * 5000 + b"}", "out of range"),
    "int beyond 64 bits": (b'{"a": 18446744073709551616}', "out of range"),
    "uint64 beyond int64": (b'{"a": 9223372036854775808}', "out of range"),
    "NaN": (b'{"a": NaN}', "NaN"),
    "Infinity": (b'[-Infinity]', "NaN and Infinity"),
    "float overflow": (b"[1e400]", "out of range"),
    "invalid UTF-8": (b'{"a": "\xff\xfe"}', "UTF-8"),
    "raw control character": (b'{"a": "x\x01y"}', "control character"),
    "byte order mark": (b'\xef\xbb\xbf{"a": 1}', "BOM"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_hostile_json_is_refused_naming_the_problem(name):
    body, words = HOSTILE_BODIES[name]
    with pytest.raises(InvalidJSON) as info:
        decoding.loads(body)
    assert info.value.status == 400 and info.value.type == "invalid_json"
    assert words in info.value.reason, info.value.reason


def test_good_json_and_edge_integers_pass():
    assert decoding.loads(b'{"a": 9223372036854775807, "b": -9223372036854775808, "c": "\\ud83d\\ude00"}') == {
        "a": 2**63 - 1, "b": -(2**63), "c": "\U0001F600"}
    assert decoding.loads(b'{"s": "12345678901234567890123"}') == {"s": "12345678901234567890123"}  # digits in a string
    assert decoding.loads(b"[" * 1024 + b"]" * 1024)


def test_query_parameters_are_strict():
    assert decoding.query_bool("highlight", "TRUE") is True and decoding.query_bool("highlight", "0") is False
    for bad in ("yes", "", "2", "truee"):
        with pytest.raises(InvalidRequest, match="'highlight'"):
            decoding.query_bool("highlight", bad)
    assert decoding.query_int("size", "10") == 10
    for bad in ("ten", "1.5", "9" * 5000, "", "١٢"):  # the last: Arabic-Indic digits
        with pytest.raises(InvalidRequest, match="'size'"):
            decoding.query_int("size", bad)
    assert decoding.query_enum("operator", "AND", ("or", "and")) == "and"
    with pytest.raises(InvalidRequest, match="'operator'"):
        decoding.query_enum("operator", "xor", ("or", "and"))
    for bad in ("²", "9" * 5000, "-1", "1e3"):
        with pytest.raises(InvalidRequest, match="Content-Length"):
            decoding.content_length(bad)


def test_documents_are_validated_completely():
    too_big = {"id": "a", "n": 2**64}
    assert "64-bit" in validation.validate_document(too_big, 10**6)[2]
    assert "NaN" in validation.validate_document({"id": "a", "x": float("nan")}, 10**6)[2]
    assert "control" in validation.validate_document({"id": "a\x07b"}, 10**6)[2]
    assert "control" in validation.validate_document({"id": "a", "f\x1bg": "x"}, 10**6)[2]
    assert "control" in validation.validate_document({"id": "a", "f\ud800": "x"}, 10**6)[2]
    assert "JSON" in validation.validate_document({"id": "a", "x": "\udfff"}, 10**6)[2]
    assert validation.validate_document({"id": "ok", "x": "fine"}, 10**6)[2] is None


@pytest.mark.parametrize("url, words", [
    ("ftp://hooks.example.com/x", "scheme"),
    ("file:///etc/passwd", "scheme"),
    ("http://user:pass@hooks.example.com/x", "credentials"),
    ("http://user@hooks.example.com/x", "credentials"),
    ("http://evil.example.org/x", "not allowed"),
    ("http://127.0.0.1:8265/api/jobs/", "not allowed"),
    ("http://hooks.example.com:99999/x", "not a valid URL"),
    ("http://hooks.example.com/a b", "spaces"),
    ("http:///x", "no host"),
])
def test_webhook_urls_refused(url, words):
    with pytest.raises(InvalidRequest) as info:
        validation.check_webhook(url, "hooks.example.com,*.corp.example")
    assert words in info.value.reason, info.value.reason


def test_webhook_allowed_hosts():
    assert validation.check_webhook("https://hooks.example.com/done", "hooks.example.com")
    assert validation.check_webhook("http://a.corp.example/x", "hooks.example.com, *.corp.example")
    with pytest.raises(InvalidRequest, match="disabled"):
        validation.check_webhook("https://hooks.example.com/done", "")
    assert validation.check_webhook("https://anything.example/", "*")


def test_unknown_stemmer_is_refused_by_the_settings_model():
    from raysearch.models import IndexSettings

    with pytest.raises(Exception, match="klingon"):
        IndexSettings(analyzer={"stemming": "klingon"})
    with pytest.raises(Exception, match="stemmingg"):
        IndexSettings(analyzer={"stemmingg": "english"})


def test_a_long_run_of_digits_in_a_string_does_not_parse_the_body_again(monkeypatch):
    """The exact integer check (a second parse, in Python's json) runs only when the decoded
    value holds a number an integer beyond 64 bits could have become; digits in a string do
    not (a vector document of the Debian corpus paid 100 us for it)."""
    calls = []
    monkeypatch.setattr(decoding, "_check_integers", lambda body, what: calls.append(what))
    vector = [0.12345000356435776, -0.5, 3, 1e-05] * 64
    body = ('[{"id": "a", "body": "2**64 = 18446744073709551616 addresses", "emb": %s}]'
            % str(vector)).encode()
    assert decoding.loads(body)[0]["emb"] == vector
    assert calls == []


@pytest.mark.parametrize("literal", [b"9223372036854775808", b"18446744073709551616", b"-9223372036854775809",
                                     b"123456789012345678901234567890"])
@pytest.mark.parametrize("where", ["value", "in a vector", "deep"])
def test_integers_beyond_64_bits_are_refused_wherever_they_are(literal, where):
    floats = b", ".join([b"0.25"] * 20)
    body = {"value": b'{"a": ' + literal + b'}',
            "in a vector": b'{"v": [' + floats + b", " + literal + b", " + floats + b"]}",
            "deep": b'{"a": [{"b": [1, "x", {"c": ' + literal + b"}]}]}"}[where]
    with pytest.raises(InvalidJSON, match="out of range"):
        decoding.loads(body)


def test_large_floats_and_int64_edges_still_pass():
    assert decoding.loads(b'{"a": 1e20, "b": [9223372036854775807, -9223372036854775808, 1.5e300],'
                          b' "s": "12345678901234567890123"}') == {
        "a": 1e20, "b": [2**63 - 1, -(2**63), 1.5e300], "s": "12345678901234567890123"}
    assert not decoding.may_hold_a_long_integer({"v": [0.5] * 100, "n": [2**63 - 1, -(2**63)], "s": "9" * 40})
    assert decoding.may_hold_a_long_integer([[0.5] * 20 + [2.0**63]])
    assert decoding.may_hold_a_long_integer({"x": [True, 2**63]})
