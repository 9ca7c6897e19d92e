#!/usr/bin/env python
"""Re-indexing existing documents, the usual case: ids drawn at random.

    python benchmarks/updates.py [--docs 64000] [--updates 20000] [--rounds 1] [--corpus PATH]

Starts a fresh local service (as benchmarks/run.py does), bulk-indexes the first
--docs documents of the Debian corpus over HTTP, then re-indexes --updates ids
drawn at random (seed 11) from them, each document's title changed, in --rounds
rounds. Random ids are the usual case: every update batch then holds documents of
nearly every earlier batch, so what an update costs inside the shard (blocks read
and rewritten, or documents marked dead) is what this measures. Replaying the ids in
their original order would be the best case.

Prints, for the insert and for each update round: seconds and documents/s to
searchable and to completed, CPU seconds by process role, and the ratio of the update
rate to the insert rate; beside it tantivy's same ratio in the same run (one writer
thread: add every document, commit; then delete_term + add_document of the same
random ids, commit), on the same terms (raysearch's Analyzer).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (benchmarks/run.py: the corpus, the sampler, measure_bulk)

SEED = 11


def tantivy_ratio(docs: list[dict], updates: list[dict]) -> dict:
    """Insert and update documents/s of tantivy (engine alone, analysed text given)."""
    import tantivy

    rows, _ = run.analyze_docs(docs)
    changed_rows, _ = run.analyze_docs(updates)
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw")
    builder.add_text_field("text", stored=False, tokenizer_name="whitespace")
    schema = builder.build()
    path = tempfile.mkdtemp(prefix="tantivy-updates-")
    try:
        index = tantivy.Index(schema, path=path)
        writer = index.writer(heap_size=200_000_000, num_threads=1)
        t = time.perf_counter()
        for doc_id, text in rows:
            writer.add_document(tantivy.Document(id=doc_id, text=text))
        writer.commit()
        insert_s = time.perf_counter() - t
        t = time.perf_counter()
        for doc_id, text in changed_rows:
            writer.delete_documents("id", doc_id)
            writer.add_document(tantivy.Document(id=doc_id, text=text))
        writer.commit()
        writer.wait_merging_threads()
        update_s = time.perf_counter() - t
    finally:
        shutil.rmtree(path, ignore_errors=True)
    insert_rate, update_rate = len(rows) / insert_s, len(changed_rows) / update_s
    from importlib.metadata import version

    return {"engine": f"tantivy {version('tantivy')}", "insert_docs_per_s": round(insert_rate, 1),
            "update_docs_per_s": round(update_rate, 1), "ratio": round(update_rate / insert_rate, 3)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=int, default=64000)
    p.add_argument("--updates", type=int, default=20000, help="ids re-indexed per round, drawn at random")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--request-docs", type=int, default=5000)
    p.add_argument("--corpus", default=None, metavar="PATH")
    args = p.parse_args(argv)

    from raysearch.client import Client
    from raysearch.config import Settings
    from raysearch.runner import LocalService
    from raysearch.ports import free_port

    corpus = run.load_docs(args.docs, run.corpus_path(args.corpus))
    by_id = {d["id"]: d for d in corpus}  # the corpus repeats a few ids: the last one wins
    rng = random.Random(SEED)
    data_dir = tempfile.mkdtemp(prefix="raysearch-updates-")
    settings = Settings.from_env(data_dir=data_dir, port=free_port())
    settings.mongo_uri = None
    service = LocalService(settings, dashboard=False)
    sampler = run.ProcessSampler()
    results = []
    try:
        service.start()
        sampler.start()
        client = Client(service.url, timeout=300)
        index = "updates"
        m = run.measure_bulk(client, index, corpus, sampler, request_docs=args.request_docs)
        results.append(("insert", m))
        print(_line("insert", m, None), flush=True)
        for r in range(args.rounds):
            ids = rng.sample(sorted(by_id), min(args.updates, len(by_id)))
            changed = [{**by_id[i], "title": f"{by_id[i].get('title', '')} (update {r + 1})"} for i in ids]
            u = run.measure_bulk(client, index, changed, sampler, request_docs=args.request_docs,
                                 create=False, expect_documents=len(by_id))
            results.append((f"update {r + 1}", u))
            print(_line(f"update {r + 1}", u, m), flush=True)
    finally:
        sampler.stop()
        service.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    ids = random.Random(SEED).sample(sorted(by_id), min(args.updates, len(by_id)))
    peer = tantivy_ratio(list(by_id.values()), [{**by_id[i], "title": f"{by_id[i].get('title', '')} (u)"}
                                                 for i in ids])
    print(f"{peer['engine']}, in process, one thread: insert {peer['insert_docs_per_s']:,} docs/s, "
          f"random updates {peer['update_docs_per_s']:,} docs/s, ratio {peer['ratio']}")
    return 0


def _line(name: str, m: dict, insert: dict | None) -> str:
    rate = m["searchable_docs_per_s"]
    ratio = f", {rate / insert['searchable_docs_per_s']:.2f}x the insert rate" if insert else ""
    cpu = m.get("memory", {}).get("cpu_s_by_role", {})
    top = ", ".join(f"{k.replace('ray::', '')} {v}" for k, v in list(cpu.items())[:6])
    return (f"{name}: {m['documents']:,} docs, searchable {m['searchable_s']} s ({rate:,} docs/s{ratio}), "
            f"completed {m['completed_s']} s ({m['completed_docs_per_s']:,} docs/s); "
            f"CPU {m.get('memory', {}).get('cpu_s_total')} s: {top}; "
            f"PSS at end {m.get('memory', {}).get('pss_mb_at_end')} MB")


if __name__ == "__main__":
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    sys.exit(main())
