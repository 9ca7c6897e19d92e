"""Reindex without downtime (app/reindex.py): a 64k-document index rebuilt into a new index
with another analyzer (no stemming) while searches and writes keep coming through an
alias, which the reindex switches at the end. No search fails, no acknowledged write is
lost (new documents, updates and deletes made during the reindex are all on the new index),
and searches through the alias then follow the new analyzer."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from raysearch.analysis.analyzer import ALL_FIELD, Analyzer, AnalyzerSettings, analyze_document
from tests.conftest import debian_docs, wait_operation

SOURCE, DEST, ALIAS = "rx-source", "rx-dest", "rx-live"
DOCS = 64_000


def _exact_total(docs: list[dict], word: str) -> int:
    """Documents whose `_all` holds `word` as a term without stemming (the new analyzer)."""
    analyzer = Analyzer(AnalyzerSettings(stemming=None))
    count = 0
    for doc in docs:
        if word[:5] not in str(doc).lower():  # cheap filter; the analyzer decides
            continue
        fields = {f.name: f for f in analyze_document(doc, analyzer)}
        count += ALL_FIELD in fields and word in fields[ALL_FIELD].postings
    return count


@pytest.mark.timeout(900)
def test_reindex_under_search_and_write_load_then_the_alias_follows_the_new_analyzer(http, service):
    docs = debian_docs(0, DOCS)
    for name in (SOURCE, DEST):
        http.delete(f"/indexes/{name}")
    http.delete(f"/aliases/{ALIAS}")
    assert http.put(f"/indexes/{SOURCE}", json={"shards": 2}).status_code == 201
    ops = [http.post(f"/bulk-indexing/{SOURCE}", json=docs[i:i + 8000]).json()["operation_id"]
           for i in range(0, DOCS, 8000)]
    for op in ops:
        assert wait_operation(http, op)["status"] == "completed"
    assert http.put(f"/aliases/{ALIAS}", json={"index": SOURCE}).status_code == 200
    stemmed = http.get(f"/indexes/{ALIAS}/search", params={"q": "libraries", "size": 0}).json()["total"]

    stop = threading.Event()
    failures: list[str] = []
    searches = [0]
    written: dict[str, dict] = {}  # id -> the document as last acknowledged
    deleted: set[str] = set()
    write_ops: list[str] = []

    def search_load():
        with httpx.Client(base_url=service.url, timeout=60) as client:
            while not stop.is_set():
                r = client.get(f"/indexes/{ALIAS}/search", params={"q": "library tools", "size": 5})
                searches[0] += 1
                if r.status_code != 200:
                    failures.append(f"search {r.status_code} {r.text[:200]}")

    def write_load():
        with httpx.Client(base_url=service.url, timeout=60) as client:
            k = 0
            while not stop.is_set():
                new = [{"id": f"rx-new-{k}-{j}", "title": f"written during the reindex {k} {j}"} for j in range(5)]
                changed = {**docs[k], "title": f"updated during the reindex {k}"}  # each id updated once
                r = client.post(f"/bulk-indexing/{ALIAS}", json=new + [changed])
                if r.status_code != 202:
                    failures.append(f"bulk {r.status_code} {r.text[:200]}")
                else:
                    write_ops.append(r.json()["operation_id"])
                    written.update({d["id"]: d for d in new + [changed]})
                gone = docs[DOCS - 1 - k]["id"]  # each id deleted once, never one updated
                r = client.delete(f"/indexes/{ALIAS}/documents/{gone}")
                if r.status_code != 200:
                    failures.append(f"delete {r.status_code} {r.text[:200]}")
                else:
                    deleted.add(gone)
                k += 1
                time.sleep(0.2)

    threads = [threading.Thread(target=search_load), threading.Thread(target=write_load)]
    for t in threads:
        t.start()
    try:
        time.sleep(2)
        r = http.post(f"/indexes/{SOURCE}/reindex", json={"dest": DEST, "settings": {"shards": 3, "analyzer": {
            "stemming": None}}, "alias": ALIAS})
        assert r.status_code == 202, r.text
        op_id = r.json()["operation_id"]
        deadline = time.time() + 600
        while (view := http.get(f"/reindex/{op_id}").json())["status"] not in ("completed", "failed"):
            assert time.time() < deadline, view
            time.sleep(0.5)
        assert view["status"] == "completed", view
        time.sleep(2)  # writes and searches on the new index for a while
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)
    assert not failures, failures[:5]
    # what the source held at the cut was copied (writes before it included), the rest replayed
    assert searches[0] > 20 and view["writes_replayed"] > 0, view
    assert DOCS - len(deleted) <= view["documents_copied"] <= DOCS + len(written), view
    assert {"alias": ALIAS, "index": DEST} in http.get("/aliases").json()["aliases"]
    for op in write_ops:
        assert wait_operation(http, op)["status"] == "completed"

    # Every acknowledged write is on the new index, at its version; every delete took.
    expected_ids = ({d["id"] for d in docs} | set(written)) - deleted
    assert http.get(f"/indexes/{DEST}").json()["documents"] == len(expected_ids)
    for doc_id, doc in list(written.items())[:: max(1, len(written) // 60)]:
        got = http.get(f"/indexes/{ALIAS}/documents/{doc_id}")
        assert got.status_code == 200 and got.json()["document"]["title"] == doc["title"], doc_id
    for doc_id in list(deleted)[:30]:
        assert http.get(f"/indexes/{ALIAS}/documents/{doc_id}").status_code == 404, doc_id
    # Searches through the alias follow the new analyzer: "libraries" no longer matches "library".
    final = [d for d in ({d["id"]: d for d in docs} | written).values() if d["id"] not in deleted]
    exact = http.get(f"/indexes/{ALIAS}/search", params={"q": "libraries", "size": 0}).json()["total"]
    assert exact == _exact_total(final, "libraries") and exact < stemmed
    for name in (SOURCE, DEST):
        http.delete(f"/indexes/{name}")
    http.delete(f"/aliases/{ALIAS}")
