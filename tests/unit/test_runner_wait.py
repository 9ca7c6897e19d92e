"""`raysearch serve` waiting for readiness (runner.LocalService.wait_ready), against a fake
/readyz over real HTTP (no Ray): it keeps waiting while actors are still starting, saying
which, and fails early on a real error."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from raysearch.config import Settings
from raysearch.runner import DEGRADED, MONGO_DOWN, READY, STARTING, LocalService, classify_readiness


def test_classify_readiness():
    """From the answer's `state`, never from its text."""
    assert classify_readiness(200, "ready") == READY
    assert classify_readiness(0, None) == STARTING
    assert classify_readiness(503, "starting") == STARTING
    assert classify_readiness(503, "mongo_down") == MONGO_DOWN
    assert classify_readiness(503, "degraded") == DEGRADED
    assert classify_readiness(503, None) == STARTING  # a proxy's 503 without a state
    assert classify_readiness(502, "something else") == STARTING


def _state(status: int, reason: str) -> str:
    """The state the service's /readyz gives with such a reason (app/service.py check_ready)."""
    if status == 200:
        return "ready"
    if reason.startswith("MongoDB unreachable"):
        return "mongo_down"
    return "degraded" if "unreadable record" in reason else "starting"


def _fake_readyz(answers):
    """Serves the given (status, reason) answers in turn, then the last one forever."""
    calls = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            status, reason = answers[min(len(calls), len(answers) - 1)]
            calls.append(self.path)
            body = json.dumps({"status": "x", "state": _state(status, reason), "reason": reason}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, calls


def test_keeps_waiting_while_actors_start_and_reports_them(no_ray, monkeypatch):
    monkeypatch.setattr("raysearch.runner.PROGRESS_EVERY_S", 0.0)
    slow = [(503, "actors not answering: worker 3, worker 7")] * 8 + [(200, "ready")]
    server, calls = _fake_readyz(slow)
    try:
        service = LocalService(Settings(port=server.server_port, mongo_uri="mongodb://x"))
        messages = []
        service.wait_ready(timeout_s=60, progress=messages.append)
        assert len(calls) == 9
        assert any("worker 3" in m for m in messages), messages
    finally:
        server.shutdown()


def test_waits_for_an_external_mongodb_that_comes_late(no_ray, monkeypatch):
    """An external MongoDB (RAYSEARCH_MONGO_URI) may start after the service: the wait goes on,
    naming it, and ends when it answers (issue 24: "with an external MongoDB the service waits")."""
    monkeypatch.setattr("raysearch.runner.PROGRESS_EVERY_S", 0.0)
    down = (503, "MongoDB unreachable: ServerSelectionTimeoutError: connection refused")
    server, calls = _fake_readyz([down] * 12 + [(200, "ready")])
    try:
        service = LocalService(Settings(port=server.server_port, mongo_uri="mongodb://x"))
        messages = []
        service.wait_ready(timeout_s=60, mongo_grace_s=1, progress=messages.append)
        assert len(calls) == 13
        assert any("waiting for MongoDB" in m for m in messages), messages
    finally:
        server.shutdown()


def test_an_external_mongodb_that_never_comes_is_named_at_the_timeout(no_ray):
    server, _ = _fake_readyz([(503, "MongoDB unreachable: ServerSelectionTimeoutError: connection refused")])
    try:
        service = LocalService(Settings(port=server.server_port, mongo_uri="mongodb://x"))
        with pytest.raises(RuntimeError, match="not ready after 3s: waiting for MongoDB"):
            service.wait_ready(timeout_s=3, mongo_grace_s=1)
    finally:
        server.shutdown()


def test_overall_timeout_names_the_last_reason(no_ray):
    server, _ = _fake_readyz([(503, "actors not answering: shard big:0")])
    try:
        service = LocalService(Settings(port=server.server_port, mongo_uri="mongodb://x"))
        with pytest.raises(RuntimeError, match="not ready after 2s: actors not answering: shard big:0"):
            service.wait_ready(timeout_s=2)
    finally:
        server.shutdown()


def test_a_corrupt_index_does_not_stop_the_service_from_starting(no_ray):
    server, _ = _fake_readyz([(503, "index 'bad' has an unreadable record in MongoDB (KeyError: 'shards')")])
    try:
        service = LocalService(Settings(port=server.server_port, mongo_uri="mongodb://x"))
        messages = []
        service.wait_ready(timeout_s=30, progress=messages.append)
        assert messages and "bad" in messages[0]
    finally:
        server.shutdown()


def _serve_status(monkeypatch, app_status: str | None, message: str = ""):
    """Serve's status as the runner reads it (real schema classes, no Ray): the raysearch
    application in `app_status`, or absent if None."""
    from ray.serve.schema import ApplicationStatus, ApplicationStatusOverview, ServeStatus

    from raysearch.runner import APP_NAME

    apps = {} if app_status is None else {
        APP_NAME: ApplicationStatusOverview(status=ApplicationStatus(app_status), message=message,
                                            last_deployed_time_s=time.time(), deployments={})}
    monkeypatch.setattr("ray.is_initialized", lambda: True)
    monkeypatch.setattr("ray.serve.status", lambda: ServeStatus(applications=apps))


def test_deploy_failure_reads_only_a_failed_application(no_ray, monkeypatch):
    service = LocalService(Settings(port=1, mongo_uri="mongodb://x"))
    for status in (None, "NOT_STARTED", "DEPLOYING", "RUNNING", "UNHEALTHY"):
        _serve_status(monkeypatch, status, "still going")
        assert service._deploy_failure() is None, status
    _serve_status(monkeypatch, "DEPLOY_FAILED", "")
    assert service._deploy_failure() == "deployment failed"
    _serve_status(monkeypatch, "DEPLOY_FAILED", "x" * 5000)
    assert service._deploy_failure() == "x" * 2000  # bounded

    def serve_not_up():
        raise ConnectionError("Serve is still starting")

    monkeypatch.setattr("ray.serve.status", serve_not_up)
    assert service._deploy_failure() is None
    monkeypatch.setattr("ray.is_initialized", lambda: False)
    assert service._deploy_failure() is None


def test_fails_fast_when_the_deployment_failed(no_ray, monkeypatch):
    """/readyz would say "starting" forever (no replica will come up): the failed deployment,
    with Serve's message, ends the wait at once, not at the overall timeout."""
    _serve_status(monkeypatch, "DEPLOY_FAILED", "ValidationError: port must be an int")
    server, calls = _fake_readyz([(503, "actors not answering: worker 0")])
    try:
        service = LocalService(Settings(port=server.server_port, mongo_uri="mongodb://x"))
        started = time.time()
        with pytest.raises(RuntimeError, match="failed to start: ValidationError: port must be an int"):
            service.wait_ready(timeout_s=600)
        assert time.time() - started < 30 and len(calls) == 1
    finally:
        server.shutdown()
