import json

from raysearch.models import Operation, SearchResult, to_jsonable


def test_typed_results_read_like_json(no_ray):
    raw = {"total": 2, "took_ms": 1.5, "hits": [{"id": "a", "score": 1.0, "document": {"id": "a"}}]}
    result = SearchResult.model_validate(raw)
    assert result.total == result["total"] == 2
    assert result.hits[0].id == result["hits"][0]["id"] == "a"
    assert json.loads(json.dumps(result, default=to_jsonable)) == raw
    op = Operation.model_validate({
        "operation_id": "x", "index": "i", "status": "completed",
        "documents": {"total": 1, "indexed": 1, "failed": 0},
        "batches": {"total": 1, "indexed": 1, "persisted": 1, "failed": 0},
        "errors": [], "created_at": 1.0, "updated_at": 2.0, "extra_field": True,
    })
    assert op.documents.indexed == op["documents"]["indexed"] == 1
    assert op.get("completed_at") is None and op["extra_field"] is True


def test_client_retries_backpressure_and_a_briefly_unavailable_mongodb(no_ray, monkeypatch):
    """Unit test with httpx's MockTransport standing in for the service (says so): 429 and 503
    with Retry-After are sent again; a 503 keeps failing after 5 retries; other errors at once."""
    import httpx
    import pytest

    from raysearch.client import Client, RaySearchClientError

    monkeypatch.setattr("raysearch.client.time.sleep", lambda s: None)
    answers: list = []
    seen: list = []

    def handler(request):
        seen.append(request.url.path)
        status, body, headers = answers.pop(0)
        return httpx.Response(status, json=body, headers=headers)

    client = Client("http://service.test")
    client.http = httpx.Client(base_url="http://service.test", transport=httpx.MockTransport(handler))
    busy = (429, {"error": {"type": "overloaded", "reason": "busy"}}, {"Retry-After": "1"})
    down = (503, {"error": {"type": "mongodb_unavailable", "reason": "MongoDB unreachable"}}, {"Retry-After": "5"})
    ok = (200, {"index": "i", "documents": 3}, {})
    answers[:] = [busy, down, down, ok]
    assert client.index("i")["documents"] == 3 and len(seen) == 4
    answers[:] = [down] * 6
    with pytest.raises(RaySearchClientError) as err:
        client.index("i")
    assert err.value.status == 503 and len(seen) == 4 + 6
    answers[:] = [(404, {"error": {"type": "not_found", "reason": "no such index"}}, {})]
    with pytest.raises(RaySearchClientError):
        client.index("i")
    assert len(seen) == 11
