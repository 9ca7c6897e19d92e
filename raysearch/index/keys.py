"""RocksDB key layout of one shard (all keys and values are bytes).

Data keys (mirrored to MongoDB, so a shard can be rebuilt from it):
  D<id>                          stored document (JSON)
  T<id>                          doc number, opstamp of its batch (8 + 8 bytes BE), then what
                                 the document indexed: field lengths and terms (JSON; a
                                 derived `_all` has null terms: index/all_field.py)
  P<field>\0<term>\0<opstamp:8>  posting block: the term's postings in the documents one batch
                                 added (numbers relative to that batch's base; encoding.py)
  V<id>                          the document's vectors: its doc number (8 bytes BE), then per
                                 vector field its name, dims and float32 values (vectors.py)
  B<opstamp:8>                   base doc number and document count of one batch
  L<opstamp:8>                   the batch's block list: how many of its documents its
                                 blocks held when last written (u32), then its blocks' term
                                 prefixes (zlib); what a purge of its dead postings reads
  A<batch key>                   opstamp at which a batch was applied (idempotent replays)
  F<field>                       a text field of an index whose `_all` is derived from its
                                 text fields' postings (index/all_field.py); empty value
Postings are grouped per (term, batch) like a tiny Lucene segment, so a batch
writes one key per distinct term instead of one per (term, document). Removing
a document (delete or re-index) deletes its T, D and V entries and leaves its
postings where they are: a document number without a T entry is dead, searches
skip it (the live set), and purges drop it from its batch's blocks later
(dead_postings.py), as Lucene and tantivy mark deletions and drop them at merges.
Internal keys (never mirrored; they start with '~'):
  ~O<opstamp:8 bytes BE>             change log: every key and value one batch wrote
                                     (columnar, = a MongoDB chunk payload); the durable
                                     dirty marks, drained by persistence oldest first
  ~M                                 last opstamp
  ~S                                 snapshot of the derived in-memory state (statistics,
                                     doc numbers, doc-value columns) as of one opstamp,
                                     so a shard opens without scanning every T entry;
                                     used only when it matches ~M (shard_index.py); kept
                                     apart, in a column family of its own, where no seek
                                     of the other keys reads it (storage/rocks.py)
  ~I                                 a random id of this store, made when it is created:
                                     what files derived from it (ANN graphs) are tied to
Field names, terms and ids never contain NUL (validated at the ingress), so the
NUL separators are unambiguous.
Document frequencies, field statistics and the document count are not data:
they are derived from the T entries (shard_index.ShardStats) and snapshotted under ~S.
"""

from __future__ import annotations

import struct
import zlib

DOC = b"D"
DOC_TERMS = b"T"
POSTING = b"P"
VECTORS = b"V"
BATCH_BASE = b"B"
BATCH_BLOCKS = b"L"
APPLIED = b"A"
TEXT_FIELD = b"F"
INTERNAL = b"~"
CHANGE_LOG = b"~O"
LAST_OPSTAMP = b"~M"
SNAPSHOT = b"~S"
STORE_ID = b"~I"
SEP = b"\x00"

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")


def doc_key(doc_id: str) -> bytes:
    return DOC + doc_id.encode()


def doc_terms_key(doc_id: str) -> bytes:
    return DOC_TERMS + doc_id.encode()


def vectors_key(doc_id: str) -> bytes:
    return VECTORS + doc_id.encode()


def text_field_key(field: str) -> bytes:
    return TEXT_FIELD + field.encode()


def doc_id_of(key: bytes) -> str:
    """The id in a D, T or V key."""
    return key[1:].decode()


def term_prefix(field: str, term: str) -> bytes:
    return POSTING + field.encode() + SEP + term.encode() + SEP


def split_term_prefix(prefix: bytes) -> tuple[str, str]:
    """-> (field, term) of a term_prefix."""
    field, term = prefix[1:-1].split(SEP, 1)
    return field.decode(), term.decode()


def opstamp_bytes(opstamp: int) -> bytes:
    """An opstamp as it appears in keys and values (8 bytes, big-endian: sorts by number)."""
    return _U64.pack(opstamp)


def unpack_u64(raw: bytes, offset: int = 0) -> int:
    return _U64.unpack_from(raw, offset)[0]


def block_key(term_prefix_bytes: bytes, stamp: bytes) -> bytes:
    """P key of one batch's block of a term; `stamp` = opstamp_bytes(opstamp), packed once per batch."""
    return term_prefix_bytes + stamp


def split_block_key(key: bytes) -> tuple[str, str, int]:
    """-> (field, term, opstamp) of a P key."""
    field, term = key[1:-9].split(SEP, 1)
    return field.decode(), term.decode(), _U64.unpack(key[-8:])[0]


def doc_terms_value(docnum: int, stamp: bytes, terms_json: bytes) -> bytes:
    """T value: doc number, opstamp of the batch that added the document, term-list JSON."""
    return _U64.pack(docnum) + stamp + terms_json


def split_doc_terms_value(raw: bytes) -> tuple[int, int, bytes]:
    """-> (doc number, opstamp, term-list JSON) of a T value."""
    return _U64.unpack_from(raw, 0)[0], _U64.unpack_from(raw, 8)[0], raw[16:]


def batch_base_key(opstamp: int) -> bytes:
    return BATCH_BASE + _U64.pack(opstamp)


def batch_base_value(base: int, count: int) -> bytes:
    return _U64.pack(base) + _U64.pack(count)


def split_batch_base(key: bytes, raw: bytes) -> tuple[int, int, int]:
    """-> (opstamp, base doc number, document count) of a B entry."""
    return _U64.unpack_from(key, 1)[0], _U64.unpack_from(raw, 0)[0], _U64.unpack_from(raw, 8)[0]


def batch_blocks_key(opstamp: int) -> bytes:
    return BATCH_BLOCKS + _U64.pack(opstamp)


def batch_blocks_value(held: int, prefixes: list[bytes]) -> bytes:
    """L value: the documents the batch's blocks hold, then its blocks' term prefixes.
    0xff never occurs in UTF-8, so it separates prefixes (field and term strings) safely."""
    return _U32.pack(held) + zlib.compress(b"\xff".join(prefixes), 1)


def split_batch_blocks(raw: bytes) -> tuple[int, list[bytes]]:
    """-> (documents held, term prefixes) of an L value."""
    body = zlib.decompress(raw[4:])
    return _U32.unpack_from(raw, 0)[0], body.split(b"\xff") if body else []


def applied_key(batch_key: str) -> bytes:
    return APPLIED + batch_key.encode()


def change_log_key(opstamp: int, data_key: bytes) -> bytes:
    return CHANGE_LOG + _U64.pack(opstamp) + data_key


def split_change_log_key(key: bytes) -> tuple[int, bytes]:
    n = len(CHANGE_LOG)
    return _U64.unpack(key[n : n + 8])[0], key[n + 8 :]


def upper_bound(prefix: bytes) -> bytes:
    """Smallest key greater than every key starting with `prefix`."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return b"\xff" * (len(prefix) + 1)
    return stripped[:-1] + bytes([stripped[-1] + 1])
