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
