"""Batch payloads (what the intake log stores) and their split into per-shard writes."""

from __future__ import annotations

import json
from array import array
from dataclasses import dataclass, field

from raysearch import schema
from raysearch.analysis.analyzer import Analyzer, analyze_document
from raysearch.index import keys as K
from raysearch.index.encoding import encode_block
from raysearch.index.routing import shard_for


def encode_payload(docs: list[dict], deletes: list[str] = (), types: dict[str, str] | None = None) -> bytes:
    """A batch as the intake log stores it, with the typed fields it was validated
    against (so a worker reads exactly that schema, however late it runs)."""
    body = {"docs": docs, "deletes": list(deletes)}
    if types:
        body["types"] = types
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def decode_payload(raw: bytes) -> tuple[list[dict], list[str], dict[str, str]]:
    data = json.loads(raw)
    return data["docs"], data["deletes"], data.get("types") or {}


def encode_indexed(fields, typed: dict[str, list]) -> bytes:
    """The JSON part of a T entry: what the document indexed ([[field, length, [terms]], ...]),
    and, when it has typed fields, their normalised values (its doc values)."""
    indexed = [[f.name, f.length, sorted(f.postings)] for f in fields]
    body = {"f": indexed, "v": typed} if typed else indexed
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def parse_indexed(raw: bytes) -> tuple[list, dict[str, list]]:
    """-> (indexed fields, typed values) of the JSON part of a T entry."""
    data = json.loads(raw)
    if isinstance(data, dict):
        return data["f"], data["v"]
    return data, {}


@dataclass
class ShardBatch:
    """One shard's part of a batch, as flat lists of bytes (cheap to pickle between actors).

    Documents are numbered 0..n-1 in list order; the posting blocks use those numbers,
    and the shard adds its base doc number (keys.py)."""

    doc_ids: list[str] = field(default_factory=list)
    stored: list[bytes] = field(default_factory=list)  # JSON of each whole document
    terms: list[bytes] = field(default_factory=list)  # JSON [[field, length, [terms...]], ...]
    block_prefixes: list[bytes] = field(default_factory=list)  # keys.term_prefix(field, term)
    blocks: list[bytes] = field(default_factory=list)  # encoding.encode_block
    deletes: list[str] = field(default_factory=list)


class _BlockBuilder:
    """Accumulates one shard's postings per (field, term) across the batch's documents."""

    def __init__(self):
        self.fields: dict[str, dict[str, tuple[array, array, array, array]]] = {}

    def add(self, local: int, fields) -> None:
        for f in fields:
            by_term = self.fields.get(f.name)
            if by_term is None:
                by_term = self.fields[f.name] = {}
            length = f.length
            for term, positions in f.postings.items():
                cols = by_term.get(term)
                if cols is None:
                    cols = by_term[term] = (array("I"), array("I"), array("I"), array("I"))
                cols[0].append(local)
                cols[1].append(len(positions))
                cols[2].append(length)
                cols[3].extend(positions)

    def emit(self, out: ShardBatch) -> None:
        for name, by_term in self.fields.items():
            for term, cols in by_term.items():
                out.block_prefixes.append(K.term_prefix(name, term))
                out.blocks.append(encode_block(*cols))


def split_batch(docs: list[dict], deletes: list[str], shards: int, analyzer: Analyzer,
                types: dict[str, str] | None = None):
    """-> ({shard: ShardBatch}, indexed records, failed [{id, reason}]).

    A document that cannot be analysed fails alone; its neighbours proceed.
    Within a batch the last occurrence of an id wins (like a sequence of PUTs);
    every record of it counts as indexed, as each line of an Elasticsearch
    `_bulk` does, so that indexed + failed = the records sent.
    """
    per_shard: dict[int, ShardBatch] = {}
    builders: dict[int, _BlockBuilder] = {}
    failed = []
    latest, records = {}, {}
    for doc in docs:
        latest[doc["id"]] = doc
        records[doc["id"]] = records.get(doc["id"], 0) + 1
    for doc_id, doc in latest.items():
        try:
            typed = schema.typed_values(doc, types) if types else {}
            fields = analyze_document(doc, analyzer, types)
            stored = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
            terms = encode_indexed(fields, typed)
        except Exception as exc:  # one bad document must not fail its batch
            failed.append({"id": doc_id, "reason": f"analysis failed: {exc}"})
            continue
        n = shard_for(doc_id, shards)
        part = per_shard.get(n)
        if part is None:
            part = per_shard[n] = ShardBatch()
            builders[n] = _BlockBuilder()
        builders[n].add(len(part.doc_ids), fields)
        part.doc_ids.append(doc_id)
        part.stored.append(stored)
        part.terms.append(terms)
    for n, builder in builders.items():
        builder.emit(per_shard[n])
    for doc_id in deletes:
        n = shard_for(doc_id, shards)
        per_shard.setdefault(n, ShardBatch()).deletes.append(doc_id)
    return per_shard, len(docs) - sum(records[f["id"]] for f in failed), failed

