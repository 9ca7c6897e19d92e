"""Batch payloads (what the intake log stores) and their split into per-shard writes."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

import orjson  # 5-10x json's speed per stored document and T entry; the ingress decodes with it too

from raysearch import schema
from raysearch.analysis.analyzer import ALL_FIELD, Analyzer
from raysearch.index.batch_postings import analyze_batch, build_blocks, indexed_values
from raysearch.index.routing import shard_for
from raysearch.index.vectors import encode_vectors


_VECTOR_PAYLOAD = b"RSv1"  # a payload with a binary section of vectors follows (else plain JSON)
_U32 = struct.Struct(">I")


def encode_payload(docs: list[dict], deletes: list[str] = (), types: dict[str, str] | None = None,
                   vectors: dict[str, schema.VectorSpec] | None = None) -> bytes:
    """A batch as the intake log stores it, with the typed and vector fields it was validated
    against (so a worker reads exactly that schema, however late it runs).

    Vectors go in a binary section, a float32 matrix per field (the rows of the documents
    that have it), not as JSON numbers: 1 KB instead of ~2.6 KB a 256-d vector in MongoDB,
    and no float parsing in the worker. The values were checked at the ingress
    (schema.vector_value), so float32 holds them."""
    body: dict = {"docs": docs, "deletes": list(deletes)}
    if types:
        body["types"] = types
    if not vectors:
        return orjson.dumps(body)
    body["vectors"] = {name: list(spec) for name, spec in vectors.items()}
    rows: dict[str, list[int]] = {}
    blocks = []
    stripped = []
    for name in sorted(vectors):
        rows[name] = [i for i, doc in enumerate(docs) if doc.get(name) is not None]
        if rows[name]:
            blocks.append(np.asarray([schema.stored_vector(docs[i][name]) for i in rows[name]], dtype="<f4").tobytes())
    for doc in docs:
        stripped.append({k: v for k, v in doc.items() if k not in vectors} if any(k in vectors for k in doc) else doc)
    body["docs"], body["vector_rows"] = stripped, rows
    head = orjson.dumps(body)
    return b"".join([_VECTOR_PAYLOAD, _U32.pack(len(head)), head, *blocks])


def decode_payload(raw: bytes) -> tuple[list[dict], list[str], dict[str, str], dict[str, schema.VectorSpec]]:
    """-> (documents, deletes, typed fields, vector fields); a document's vectors come back as
    float32 arrays (schema.vector_value takes them as they are)."""
    if not raw.startswith(_VECTOR_PAYLOAD):
        data = orjson.loads(raw)
        vectors = {name: schema.VectorSpec(*spec) for name, spec in (data.get("vectors") or {}).items()}
        return data["docs"], data["deletes"], data.get("types") or {}, vectors
    (size,) = _U32.unpack_from(raw, len(_VECTOR_PAYLOAD))
    at = len(_VECTOR_PAYLOAD) + _U32.size
    data = orjson.loads(raw[at:at + size])
    at += size
    docs = data["docs"]
    vectors = {name: schema.VectorSpec(*spec) for name, spec in data["vectors"].items()}
    for name in sorted(vectors):
        positions = data["vector_rows"].get(name) or []
        dims = vectors[name].dims
        matrix = np.frombuffer(raw, dtype="<f4", count=len(positions) * dims, offset=at).reshape(len(positions), dims)
        at += matrix.nbytes
        for i, row in zip(positions, matrix):
            docs[i][name] = row
    return docs, data["deletes"], data.get("types") or {}, vectors


def encode_indexed(indexed: list, typed: dict[str, list]) -> bytes:
    """The JSON part of a T entry: what the document indexed ([[field, length, [sorted terms]],
    ...]), and, when it has typed fields, their normalised values (its doc values)."""
    body = {"f": indexed, "v": typed} if typed else indexed
    return orjson.dumps(body)


def add_field_totals(totals: dict[str, list[int]], indexed: list) -> None:
    """Count one document's indexed fields into field -> [documents, total length]."""
    for name, length, _ in indexed:
        acc = totals.get(name)
        if acc is None:
            acc = totals[name] = [0, 0]
        acc[0] += 1
        acc[1] += length


def parse_indexed(raw: bytes) -> tuple[list, dict[str, list]]:
    """-> (indexed fields, typed values) of the JSON part of a T entry."""
    data = orjson.loads(raw)
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
    block_terms: list[tuple[str, str]] = field(default_factory=list)  # (field, term) of each prefix (or empty)
    deletes: list[str] = field(default_factory=list)
    # What the shard's statistics and doc values need of the documents, so that it does
    # not parse their term lists (a T entry names every term: ~200 strings a document):
    field_totals: dict[str, list[int]] = field(default_factory=dict)  # field -> [documents, total length]
    typed: list[dict] = field(default_factory=list)  # per document its typed values ({} when none)
    vectors: list[bytes] = field(default_factory=list)  # per document its V payload (b"" when none; vectors.py)
    # A derived `_all` (index/all_field.py: no postings of its own): the fields it is made of,
    # each document's `_all` length, and per term of it how many of the documents hold it
    text_fields: list[str] = field(default_factory=list)
    all_lengths: list[int] = field(default_factory=list)
    all_terms: list[str] = field(default_factory=list)
    all_counts: list[int] = field(default_factory=list)

    def payload_bytes(self) -> int:
        """The bytes this part carries (its byte strings; ids, terms and numbers are small
        beside them): what travels to the shard, for actors/traffic.py."""
        return (sum(map(len, self.stored)) + sum(map(len, self.terms)) + sum(map(len, self.block_prefixes))
                + sum(map(len, self.blocks)) + sum(map(len, self.vectors)))


def _analyze(rows: list[tuple], values_of: list, analyzer: Analyzer, failed: list[dict], derived_all: bool):
    """-> (BatchTokens of the rows' values, the rows analysed). The whole batch is analysed at
    once; if that fails, each document alone, and those it fails for are left out (into
    `failed`): their neighbours proceed."""
    try:
        return analyze_batch(values_of, analyzer, derived_all), rows
    except Exception:
        kept_rows, kept_values = [], []
        for row, values in zip(rows, values_of):
            try:
                analyze_batch([values], analyzer, derived_all)
            except Exception as exc:
                failed.append({"id": row[0], "reason": f"analysis failed: {exc}"})
                continue
            kept_rows.append(row)
            kept_values.append(values)
        return analyze_batch(kept_values, analyzer, derived_all), kept_rows


def split_batch(docs: list[dict], deletes: list[str], shards: int, analyzer: Analyzer,
                types: dict[str, str] | None = None, vectors: dict[str, schema.VectorSpec] | None = None,
                derived_all: bool = True):
    """-> ({shard: ShardBatch}, indexed records, failed [{id, reason}]).

    A document that cannot be analysed fails alone; its neighbours proceed.
    Within a batch the last occurrence of an id wins (like a sequence of PUTs);
    every record of it counts as indexed, as each line of an Elasticsearch
    `_bulk` does, so that indexed + failed = the records sent.
    Postings are grouped for the whole batch at once (batch_postings.py).
    Vector fields leave the stored JSON for the document's V entry (float32, not JSON
    numbers); GET of a document puts them back.
    `derived_all` (an index's `all_field: "derived"`): no `_all` postings; the shard merges
    the text fields' own when `_all` is read (index/all_field.py).
    """
    per_shard: dict[int, ShardBatch] = {}
    failed = []
    latest, records = {}, {}
    for doc in docs:
        latest[doc["id"]] = doc
        records[doc["id"]] = records.get(doc["id"], 0) + 1
    analyzer.start_batch()
    rows, values_of = [], []  # per accepted document: (id, stored JSON, vectors payload, typed values, shard)
    for doc_id, doc in latest.items():
        try:
            typed = schema.typed_values(doc, types) if types else {}
            payload = b""
            if vectors:
                found = schema.vector_values(doc, vectors)
                payload = encode_vectors(found) if found else b""
                doc = {k: v for k, v in doc.items() if k not in vectors}
            values = indexed_values(doc, types)
            stored = orjson.dumps(doc)
        except Exception as exc:  # one bad document must not fail its batch
            failed.append({"id": doc_id, "reason": f"analysis failed: {exc}"})
            continue
        rows.append((doc_id, stored, payload, typed, shard_for(doc_id, shards)))
        values_of.append(values)
    tokens, rows = _analyze(rows, values_of, analyzer, failed, derived_all)
    shard_of, typed_of = [], []
    for doc_id, stored, payload, typed, n in rows:
        part = per_shard.get(n)
        if part is None:
            part = per_shard[n] = ShardBatch()
        part.doc_ids.append(doc_id)
        part.stored.append(stored)
        part.vectors.append(payload)
        shard_of.append(n)
        typed_of.append(typed)
    built = build_blocks(tokens, shard_of, analyzer)
    text_fields = sorted(tokens.text_fields)
    for n, indexed, typed in zip(shard_of, built.indexed, typed_of):
        part = per_shard[n]
        part.terms.append(encode_indexed(indexed, typed))
        part.typed.append(typed)
        add_field_totals(part.field_totals, indexed)
        if text_fields:
            part.text_fields = text_fields
            part.all_lengths.append(next((length for name, length, _ in indexed if name == ALL_FIELD), 0))
    for n, terms in built.all_terms.items():
        per_shard[n].all_terms, per_shard[n].all_counts = terms, built.all_counts[n]
    for n, prefixes in built.prefixes.items():
        per_shard[n].block_prefixes = prefixes
        per_shard[n].blocks = built.blocks[n]
        per_shard[n].block_terms = built.terms[n]
    for doc_id in deletes:
        n = shard_for(doc_id, shards)
        per_shard.setdefault(n, ShardBatch()).deletes.append(doc_id)
    return per_shard, len(docs) - sum(records[f["id"]] for f in failed), failed

