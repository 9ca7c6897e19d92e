"""Fuzzing: schemathesis generates requests from the app's own OpenAPI schema
(a bounded number per operation); no request may produce a 5xx, and every
error must have the documented {"error": {"type", "reason"}} shape."""

from __future__ import annotations

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
