"""Faults injected at the actor boundary (tests/faults.py replaces the IndexWorkers for a
test): a document whose analysis fails fails alone, reported with its reason; a batch that
fails until a file exists is retried, reported failed, and completes on POST .../retry.
Also: the webhook is delivered (retried after a 5xx) to an allowed host."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

from tests.conftest import wait_operation
from tests.faults import faulty_workers


def test_document_failing_analysis_fails_alone(http, service):
    index = "poison"
    docs = [{"id": f"p{i}", "title": f"good document {i}"} for i in range(10)]
    docs[4]["title"] = "this one holds ZZPOISONZZ in its text"
    with faulty_workers(service.settings, analysis_fails_on="ZZPOISONZZ"):
        op = wait_operation(http, http.post(f"/bulk-indexing/{index}", json=docs).json()["operation_id"], 300)
    assert op["status"] == "partially_completed", op
    assert op["documents"] == {"total": 10, "indexed": 9, "failed": 1}
    assert [e["id"] for e in op["errors"]] == ["p4"]
    assert "analysis failed" in op["errors"][0]["reason"] and "injected fault" in op["errors"][0]["reason"]
    assert http.get(f"/indexes/{index}").json()["documents"] == 9
    ready = http.get("/readyz")
    assert ready.status_code == 200, ready.text  # the real workers are back


class _Receiver:
    """A webhook receiver on 127.0.0.1 that keeps every operation it is sent."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/done"

    def wait_for(self, count: int, timeout_s: float = 30) -> list[dict]:
        deadline = time.time() + timeout_s
        while len(self.received) < count and time.time() < deadline:
            time.sleep(0.1)
        return self.received


def test_failed_batch_is_reported_and_retried(http, service, tmp_path):
    """... and a retried operation sends its webhook again when it finishes again (issue 24,
    defect 2: the first delivery's mark was kept, so the retry's result was never sent)."""
    index = "retry"
    switch = tmp_path / "heal"
    docs = [{"id": f"r{i}", "title": "retry me"} for i in range(5)]
    docs[0]["title"] = "retry me ZZBATCHFAILZZ"
    hook = _Receiver()
    try:
        with faulty_workers(service.settings, batch_fails_until=("ZZBATCHFAILZZ", str(switch))):
            r = http.post(f"/bulk-indexing/{index}", json={"documents": docs, "webhook": hook.url})
            op = wait_operation(http, r.json()["operation_id"], 300)
            assert op["status"] == "failed", op
            assert op["batches"]["failed"] == 1 and op["documents"]["failed"] == 5
            assert "after 3 attempts" in op["errors"][0]["reason"] and "r3" in op["errors"][0]["ids"]
            assert "injected fault" in op["errors"][0]["reason"]
            assert [h["status"] for h in hook.wait_for(1)] == ["failed"]
            switch.write_text("healed")
            assert http.post(f"/bulk-operations/{op['operation_id']}/retry").status_code == 202
            op = wait_operation(http, op["operation_id"], 300)
        assert op["status"] == "completed" and op["documents"]["indexed"] == 5 and op["errors"] == []
        assert [h["status"] for h in hook.wait_for(2)] == ["failed", "completed"]
        assert {h["operation_id"] for h in hook.received} == {op["operation_id"]}
    finally:
        hook.server.shutdown()


def test_webhook_receives_the_final_operation(http):
    received = []

    class Receiver(BaseHTTPRequestHandler):
        calls = 0

        def do_POST(self):
            Receiver.calls += 1
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status = 503 if Receiver.calls == 1 else 200  # the first delivery fails: retried
            if status == 200:
                received.append(body)
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/done"
        r = http.post("/bulk-indexing/hooked", json={"documents": [{"id": "h1", "title": "hook"}], "webhook": url})
        assert r.status_code == 202, r.text
        op_id = r.json()["operation_id"]
        wait_operation(http, op_id)
        deadline = time.time() + 30
        while not received and time.time() < deadline:
            time.sleep(0.1)
        assert received and received[0]["operation_id"] == op_id and received[0]["status"] == "completed"
        assert Receiver.calls >= 2
        # a host outside RAYSEARCH_WEBHOOK_ALLOWED_HOSTS (the suite allows 127.0.0.1 only)
        r = http.post("/bulk-indexing/hooked", json={"documents": [{"id": "h2"}],
                                                      "webhook": f"http://localhost:{server.server_port}/done"})
        assert r.status_code == 400 and "not allowed" in r.json()["error"]["reason"]
    finally:
        server.shutdown()
