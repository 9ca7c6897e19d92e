"""Batch payloads (what the intake log stores) and their split into per-shard writes."""

from __future__ import annotations

import json
from collections import defaultdict

from raysearch.analysis.analyzer import Analyzer, analyze_document
from raysearch.index import keys as K
from raysearch.index.encoding import encode_posting
from raysearch.index.routing import shard_for


def encode_payload(docs: list[dict], deletes: list[str] = ()) -> bytes:
    return json.dumps({"docs": docs, "deletes": list(deletes)}, ensure_ascii=False, separators=(",", ":")).encode()


def decode_payload(raw: bytes) -> tuple[list[dict], list[str]]:
    data = json.loads(raw)
    return data["docs"], data["deletes"]


def split_batch(docs: list[dict], deletes: list[str], shards: int, analyzer: Analyzer, poison_field: str | None = None):
    """-> ({shard: (docs as tuples, delete ids)}, indexed count, failed [{id, reason}]).

    A document that cannot be analysed fails alone; its neighbours proceed.
    Within a batch the last occurrence of an id wins (like a sequence of PUTs).
    """
    per_shard: dict[int, tuple[list, list]] = defaultdict(lambda: ([], []))
    failed = []
    latest = {}
    for doc in docs:
        latest[doc["id"]] = doc
    if poison_field:
        _fail_batch_if_poisoned(latest.values(), poison_field)
    for doc_id, doc in latest.items():
        try:
            if poison_field and doc.get(poison_field) == "analyzer":
                raise ValueError(f"poisoned document (test setting: field {poison_field!r})")
            fields = analyze_document(doc, analyzer)
            stored = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
        except Exception as exc:  # one bad document must not fail its batch
            failed.append({"id": doc_id, "reason": f"analysis failed: {exc}"})
            continue
        per_shard[shard_for(doc_id, shards)][0].append(encode_shard_doc(doc_id, stored, fields))
    for doc_id in deletes:
        per_shard[shard_for(doc_id, shards)][1].append(doc_id)
    return dict(per_shard), len(latest) - len(failed), failed


def encode_shard_doc(doc_id: str, stored: bytes, fields) -> tuple:
    """A document as flat bytes for its shard: (id, stored JSON, T entry JSON,
    [(posting key, posting value)]). Encoding here, in the worker, keeps the
    single-writer shard's work to one RocksDB write (and cheap deserialisation)."""
    indexed, postings = [], []
    for f in fields:
        for term, positions in f.postings.items():
            postings.append((K.posting_key(f.name, term, doc_id), encode_posting(len(positions), f.length, positions)))
        indexed.append([f.name, f.length, sorted(f.postings)])
    return doc_id, stored, json.dumps(indexed, separators=(",", ":")).encode(), postings


def _fail_batch_if_poisoned(docs, poison_field: str) -> None:
    """TEST ONLY: a document with {poison_field: "batch-until-file:<path>"} makes its whole
    batch fail until that file exists (to exercise retries and POST .../retry)."""
    import os

    prefix = "batch-until-file:"
    for doc in docs:
        value = doc.get(poison_field)
        if isinstance(value, str) and value.startswith(prefix) and not os.path.exists(value[len(prefix):]):
            raise RuntimeError(f"poisoned batch (test setting: field {poison_field!r})")
