"""A shard's vector columns: per vector field, a float32 matrix of the documents' vectors.

Durably, a document's vectors live in its `V` entry (keys.py), written in the same RocksDB
WriteBatch as its postings and doc values, mirrored to MongoDB through the change log,
restored and verified with everything else. In memory each field is a float32 matrix
with the rows' norms, and per document number a `present` mask and the number's row,
rebuilt from the V entries when the shard opens. A removed document's row is reused by a
later document once REUSE_AFTER_S has passed (a search that began before the removal
still reads the old vector meanwhile), so months of updates cost 5 bytes per removed
version (its number's mask and row), not a row of 4 x dims bytes. The shard knows no
schema: the query names the similarity, and cosine divides by the norms kept here.

Nearest-neighbour search is exact (a numpy matrix-vector product over the eligible rows),
which is what a selective filter needs anyway; search/knn.py turns similarities into
scores and ranks them. Pure logic (no Ray).
"""

from __future__ import annotations

import struct
import threading
import time
from collections import deque

import numpy as np

_HEAD = struct.Struct("<HI")  # field name length, dims
_U64 = struct.Struct(">Q")
COSINE, DOT_PRODUCT, L2 = "cosine", "dot_product", "l2"
# A removed document's row is not rewritten before this: searches take far less, and a
# search holding the removed number (live when it began) still reads that number's vector.
REUSE_AFTER_S = 10.0


def encode_vectors(vectors: dict[str, np.ndarray]) -> bytes:
    """A document's vectors as a V entry's payload: per field, name, dims, float32 values."""
    out = bytearray()
    for name, vector in vectors.items():
        raw = name.encode()
        out += _HEAD.pack(len(raw), len(vector)) + raw + np.asarray(vector, dtype="<f4").tobytes()
    return bytes(out)


def decode_vectors(payload: bytes) -> dict[str, np.ndarray]:
    out, at = {}, 0
    while at < len(payload):
        name_len, dims = _HEAD.unpack_from(payload, at)
        at += _HEAD.size
        name = payload[at:at + name_len].decode()
        at += name_len
        out[name] = np.frombuffer(payload, dtype="<f4", count=dims, offset=at)
        at += 4 * dims
    return out


def vector_entry(docnum: int, payload: bytes) -> bytes:
    """V value: the document's number, then its vectors (so a scan needs no T lookup)."""
    return _U64.pack(docnum) + payload


def split_vector_entry(raw: bytes) -> tuple[int, bytes]:
    return _U64.unpack_from(raw, 0)[0], raw[8:]


class VectorColumn:
    """The vectors of one field. Written by one thread (the shard's apply), read by many:
    the arrays are replaced whole when they grow, and readers take them as one tuple."""

    def __init__(self, dims: int):
        self.dims = dims
        self.ann = None  # an ann.AnnIndex once the shard builds one (search/knn.py uses it)
        self.ann_next = None  # its replacement while one is built (ShardIndex.extend_ann)
        # (matrix and norms by row; present and row by document number)
        self._arrays = (np.zeros((0, dims), dtype=np.float32), np.zeros(0, dtype=np.float32),
                        np.zeros(0, dtype=np.bool_), np.zeros(0, dtype=np.int32))
        self._rows = 0  # rows handed out (the matrix may hold more, unused)
        self._removed: deque[tuple[float, int]] = deque()  # (removed at, row) oldest first
        self._live = 0

    def put(self, docnum: int, vector: np.ndarray) -> None:
        matrix, norms, present, row_of = self._arrays
        if self._removed and time.monotonic() - self._removed[0][0] >= REUSE_AFTER_S:
            row = self._removed.popleft()[1]
        else:
            row = self._rows
            self._rows += 1
        if row >= len(matrix):
            size = max(1024, 2 * len(matrix))
            grown = np.zeros((size, self.dims), dtype=np.float32)
            grown[:len(matrix)] = matrix
            grown_norms = np.zeros(size, dtype=np.float32)
            grown_norms[:len(norms)] = norms
            matrix, norms = grown, grown_norms
        if docnum >= len(present):
            size = max(1024, docnum + 1, 2 * len(present))
            grown_present = np.zeros(size, dtype=np.bool_)
            grown_present[:len(present)] = present
            grown_rows = np.full(size, -1, dtype=np.int32)
            grown_rows[:len(row_of)] = row_of
            present, row_of = grown_present, grown_rows
        matrix[row] = vector
        norms[row] = float(np.linalg.norm(vector))
        row_of[docnum] = row
        present[docnum] = True  # last: a reader never sees a half-written row as present
        self._arrays = (matrix, norms, present, row_of)
        self._live += 1

    def remove(self, docnum: int) -> None:
        """A removed document's vector: its row is free for reuse after REUSE_AFTER_S. Its
        number stays `present` (the shard's live set masks it, as it did before), and keeps
        pointing at the row, which a search that began before the removal may still read."""
        _, _, present, row_of = self._arrays
        if docnum < len(present) and present[docnum]:
            self._removed.append((time.monotonic(), int(row_of[docnum])))
            self._live -= 1

    def arrays(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(matrix, norms, present, row): the vectors and their norms by row; over document
        numbers < n, whether each has a vector (a copy) and its row (a view; -1 for none).
        A reader uses `row` only at numbers it found present and live."""
        matrix, norms, present, row_of = self._arrays
        rows = min(self._rows, len(matrix))  # rows beyond are unused capacity
        m = min(n, len(present))
        mask = np.zeros(n, dtype=np.bool_)
        mask[:m] = present[:m]
        return matrix[:rows], norms[:rows], mask, row_of[:m]

    def count(self) -> int:
        """Vectors of documents not removed."""
        return self._live

    def rows_held(self) -> int:
        """Rows of the matrix in use or waiting for reuse (its memory, in rows)."""
        return self._rows


def similarities(matrix: np.ndarray, norms: np.ndarray, rows: np.ndarray, query: np.ndarray,
                 similarity: str) -> np.ndarray:
    """The raw similarity of each row in `rows` to `query` (cosine, dot product) or, for l2,
    the squared distance. Each row's dot product is computed the same way whatever rows
    surround it (einsum, not BLAS: a BLAS product's blocking depends on the matrix's size,
    which differs by shard and moves the last bits), so scores do not depend on sharding."""
    if len(rows) * 4 >= len(matrix):  # most rows: one product over the whole matrix, no copy
        dots = np.einsum("ij,j->i", matrix, query)[rows]
    else:
        dots = np.einsum("ij,j->i", matrix[rows], query)
    dots = dots.astype(np.float64)
    if similarity == COSINE:
        qnorm = float(np.linalg.norm(query))
        return dots / (norms[rows].astype(np.float64) * qnorm)
    if similarity == DOT_PRODUCT:
        return dots
    # l2: |r|^2 - 2 r.q + |q|^2, clipped at 0 (rounding)
    r2 = norms[rows].astype(np.float64) ** 2
    return np.maximum(r2 - 2.0 * dots + float(query.astype(np.float64) @ query.astype(np.float64)), 0.0)


def scores_of(raw: np.ndarray, similarity: str) -> np.ndarray:
    """Similarities as Elasticsearch scores them: (1 + s) / 2 for cosine and dot_product,
    1 / (1 + d^2) for l2 -- higher is nearer for all three."""
    if similarity == L2:
        return 1.0 / (1.0 + raw)
    return (1.0 + raw) / 2.0


class VectorStore:
    """Every vector field of a shard: field -> VectorColumn."""

    def __init__(self):
        self.columns: dict[str, VectorColumn] = {}
        self._lock = threading.Lock()  # creating a column (rare) against a concurrent one

    def remove(self, docnum: int) -> None:
        """A removed document's vectors, in every column that holds one."""
        for column in list(self.columns.values()):
            column.remove(docnum)

    def add(self, docnum: int, payload: bytes) -> None:
        for name, vector in decode_vectors(payload).items():
            column = self.columns.get(name)
            if column is None:
                with self._lock:
                    column = self.columns.setdefault(name, VectorColumn(len(vector)))
            if len(vector) == column.dims:  # a field's dims never change (models.FieldSettings)
                column.put(docnum, vector)

    def column(self, field: str) -> VectorColumn | None:
        return self.columns.get(field)

    def __bool__(self) -> bool:
        return bool(self.columns)
