"""A fixed set of searches and the answers one version of raysearch gave them, so a later
version can be checked to answer the same: ids, totals, scores, sort values and facets.

The documents are the structured corpus of tests/integration/test_structured_search.py
(the first 3,000 records of the Debian sample, its package fields typed, plus a keyword
list, a date and a float derived from each id); the searches are words drawn from those
documents with a fixed seed, each asked plainly, with `operator=and`, as a phrase, as a
prefix, with a filter, sorted by a field and with facets, plus match-all ones; asked once
on the fresh index, and again after some documents were re-indexed and some deleted.

`scripts/record_search_answers.py` records them from a running service (how
tests/data/answers/search-answers.json was made: see its "recorded" field);
tests/integration/test_recorded_answers.py asks the same of the service under test.
Only the HTTP API is used, so any version that speaks it can be recorded.
"""

from __future__ import annotations

import gzip
import json
import random
import re
import time
import zlib
from pathlib import Path

DEBIAN_SAMPLE = Path(__file__).resolve().parent / "data" / "corpora" / "debian-sample" / "docs.jsonl.gz"
ANSWERS = Path(__file__).resolve().parent / "data" / "answers" / "search-answers.json"
INDEX = "recorded-answers"
SHARDS = 2
N_DOCS = 3000
TYPES = {"section": "keyword", "priority": "keyword", "tags": "keyword", "installed_size": "integer",
         "size": "integer", "essential": "boolean", "released": "date", "rating": "float"}
SCORE_RTOL = 1e-9  # float sums may be taken in another order by another version; nothing more


def documents() -> list[dict]:
    with gzip.open(DEBIAN_SAMPLE, "rt", encoding="utf-8") as f:
        docs = [json.loads(line) for _, line in zip(range(N_DOCS), f)]
    for doc in docs:
        h = zlib.crc32(doc["id"].encode())
        if doc.get("architecture"):
            doc["tags"] = sorted({doc["architecture"], doc.get("priority", "optional"), f"h{h % 7}"})
        ms = (1_500_000_000 + (h % 3650) * 86_400) * 1000
        doc["released"] = ms if h % 3 == 0 else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))
        if h % 5:
            doc["rating"] = round((h % 1000) / 100, 2)
    return docs


def searches(docs: list[dict], count: int = 25, seed: int = 3) -> list[dict]:
    """POST /indexes/{index}/search bodies, the same for every version."""
    rng = random.Random(seed)
    words = []
    for doc in rng.sample(docs, count):
        text = re.findall(r"[a-z]{4,}", f"{doc.get('title', '')} {doc.get('body', '')}".lower())
        if len(text) >= 2:
            start = rng.randrange(len(text) - 1)
            words.append(text[start : start + 2])
    out = []
    for i, (a, b) in enumerate(words):
        out += [{"q": f"{a} {b}", "size": 10},
                {"q": f"{a} {b}", "operator": "and", "size": 10},
                {"q": f'"{a} {b}"', "size": 5},
                {"q": f"{a[:-1]}*", "size": 5}]
        if i % 3 == 0:
            out.append({"q": a, "size": 10, "filter": {"term": {"priority": "optional"}}})
        elif i % 3 == 1:
            out.append({"q": a, "size": 10, "sort": [{"installed_size": "desc"}],
                        "filter": {"range": {"installed_size": {"gte": 100}}}})
        else:
            out.append({"q": f"{a} {b}", "size": 5, "facets": {"sections": {"terms": {"field": "section", "size": 5}},
                                                                "sizes": {"stats": {"field": "installed_size"}}}})
    out += [{"q": "*", "size": 10, "sort": [{"released": "asc"}]},
            {"q": "", "size": 0, "facets": {"tags": {"terms": {"field": "tags", "size": 10}},
                                            "rating": {"histogram": {"field": "rating", "interval": 2.5}}}},
            {"q": "library -python", "size": 10, "filter": {"not": {"term": {"essential": True}}}},
            {"q": "title:daemon", "size": 10}]
    return out


def load(http, index: str = INDEX, settings: dict | None = None) -> None:
    """The index `index`, fresh, holding documents(), all searchable and persisted; `settings`
    adds to its settings."""
    docs = documents()
    http.delete(f"/indexes/{index}")
    r = http.put(f"/indexes/{index}", json={"shards": SHARDS, "fields": {f: {"type": t} for f, t in TYPES.items()},
                                            **(settings or {})})
    r.raise_for_status()
    _bulk(http, docs, index)
    _check_count(http, len({d["id"] for d in docs}), index)


def update(http, index: str = INDEX) -> None:
    """Re-index every 7th document with a changed title and a changed size, in a shuffled
    order, and delete every 97th: what a later version must answer the same after."""
    docs = documents()
    changed = [{**d, "title": f"{d.get('title', '')} revised edition", "installed_size": 7 + i}
               for i, d in enumerate(docs[::7])]
    random.Random(5).shuffle(changed)
    _bulk(http, changed, index)
    deleted = {d["id"] for d in docs[5::97]}
    for doc_id in sorted(deleted):
        http.delete(f"/indexes/{index}/documents/{doc_id}").raise_for_status()
    _check_count(http, len({d["id"] for d in docs} - deleted), index)


def _bulk(http, docs: list[dict], index: str = INDEX) -> None:
    r = http.post(f"/bulk-indexing/{index}", json=docs)
    r.raise_for_status()
    op = r.json()["operation_id"]
    deadline = time.time() + 600
    while True:
        view = http.get(f"/bulk-operations/{op}").json()
        if view["status"] in ("completed", "partially_completed", "failed") or time.time() > deadline:
            break
        time.sleep(0.2)
    if view["status"] != "completed":
        raise RuntimeError(f"the bulk ended {view['status']}: {view}")


def _check_count(http, expected: int, index: str = INDEX) -> None:
    deadline = time.time() + 60
    while (counted := http.get(f"/indexes/{index}").json()["documents"]) != expected:
        if time.time() > deadline:
            raise RuntimeError(f"the index counts {counted} documents, not {expected}")
        time.sleep(0.2)


def answer_of(body: dict) -> dict:
    """What is compared of a search's answer (took_ms, documents and highlights are not)."""
    out = {"total": body["total"], "hits": [[h["id"], h["score"], h.get("sort")] for h in body["hits"]]}
    if body.get("facets"):  # (a search that matches nothing by its words may omit an empty one)
        out["facets"] = body["facets"]
    return out


def ask(http, index: str = INDEX) -> list[dict]:
    """The answers of the service behind `http` (an httpx.Client with base_url) to searches()
    on `index`, which must hold documents()."""
    docs = documents()
    answers = []
    for body in searches(docs):
        r = http.post(f"/indexes/{index}/search", json=body)
        if r.status_code != 200:
            raise AssertionError(f"{body}: {r.status_code} {r.text[:300]}")
        answers.append(answer_of(r.json()))
    return answers


def differences(recorded: list[dict], now: list[dict], bodies: list[dict]) -> list[str]:
    """Where two sets of answers differ (ids, totals, sort values and facets exactly; scores to
    SCORE_RTOL)."""
    out = []
    for body, a, b in zip(bodies, recorded, now):
        if a["total"] != b["total"] or (a.get("facets") or None) != (b.get("facets") or None):
            out.append(f"{body}: total/facets {a['total']} {a.get('facets')} != {b['total']} {b.get('facets')}")
            continue
        ids_a, ids_b = [h[0] for h in a["hits"]], [h[0] for h in b["hits"]]
        if ids_a != ids_b or [h[2] for h in a["hits"]] != [h[2] for h in b["hits"]]:
            out.append(f"{body}: hits {a['hits']} != {b['hits']}")
            continue
        for (_, sa, _), (_, sb, _) in zip(a["hits"], b["hits"]):
            if abs(sa - sb) > SCORE_RTOL * max(abs(sa), abs(sb), 1e-12):
                out.append(f"{body}: scores {sa} != {sb}")
                break
    if len(recorded) != len(now):
        out.append(f"{len(recorded)} answers recorded, {len(now)} now")
    return out
