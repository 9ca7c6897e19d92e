"""Load: a 20,000-document bulk while 8 clients search continuously. No errors,
no lost documents, and the bulk completes. Plus the Serve config deploys."""

from __future__ import annotations

import threading
import time

import httpx
import yaml

from tests.conftest import debian_docs, wait_operation
from tests.integration.helpers import deployed_beside, draw_queries


def test_bulk_of_20k_while_8_clients_search(http, service):
    index = "load20k"
    docs = debian_docs(32000, 52000)
    seed = docs[:500]
    wait_operation(http, http.post(f"/bulk-indexing/{index}", json=seed).json()["operation_id"])
    queries = draw_queries(docs, 200, seed=21)
    stop, errors, counts = threading.Event(), [], [0] * 8

    def searcher(i):
        with httpx.Client(base_url=service.url, timeout=60) as client:
            n = i
            while not stop.is_set():
                r = client.get(f"/indexes/{index}/search", params={"q": queries[n % len(queries)]})
                if r.status_code != 200:
                    errors.append((r.status_code, r.text[:200]))
                counts[i] += 1
                n += 8

    threads = [threading.Thread(target=searcher, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    try:
        r = http.post(f"/bulk-indexing/{index}", json=docs)
        assert r.status_code == 202, r.text
        final = wait_operation(http, r.json()["operation_id"], timeout_s=900)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not errors, errors[:5]
    assert all(c > 0 for c in counts), counts
    distinct = len({d["id"] for d in docs})
    assert final["status"] == "completed" and final["documents"]["indexed"] == len(docs)
    assert http.get(f"/indexes/{index}").json()["documents"] == distinct


def test_serve_config_yaml_deploys(service):
    """serve_config.yaml's import path and args build the app; deploy it beside the suite's."""
    from pathlib import Path

    from raysearch.serve.app import build_app

    config = yaml.safe_load((Path(__file__).parents[2] / "serve_config.yaml").read_text())
    app_config = config["applications"][0]
    args = dict(app_config["args"], mongo_uri=service.settings.mongo_uri, data_dir=service.settings.data_dir,
                workers=service.settings.workers)
    with deployed_beside(service, build_app(args), "from-config") as base:
        deadline = time.time() + 60
        while httpx.get(base + "/readyz", timeout=30).status_code != 200 and time.time() < deadline:
            time.sleep(1)
        assert httpx.get(base + "/readyz", timeout=30).status_code == 200
