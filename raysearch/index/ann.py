"""An approximate nearest-neighbour index over one vector column (usearch's HNSW).

Why usearch: a single compiled library, actively kept, that deletes, saves and memory-maps
its index (faiss's HNSW cannot delete; voyager cannot memory-map). We use it only as a
candidate generator: the candidates it proposes are scored again exactly (search/knn.py),
so a hit's score never depends on the ANN; only recall does.

The index covers the column's document numbers below `covered`: a shard's background
thread extends it as documents arrive (ShardStore._maintain_ann), and a query searches
the numbers at or above `covered` exactly, so nothing is missed while it catches up. A
removed document's key stays in the graph and is masked by the shard's live documents;
once such dead keys are a third of it, the index is built again. Document numbers are
never reused within a store, so a saved index is never wrong, at worst behind; it is
tied to its store by the store's id (a store rebuilt from MongoDB has a new one).
Pure logic over files (no Ray).
"""

from __future__ import annotations

import json
import os
import threading

import numpy as np

METRICS = {"cosine": "cos", "dot_product": "ip", "l2": "l2sq"}
# What the graph stores of each vector. Its candidates are scored again exactly from the
# float32 column, so the graph only has to rank them roughly: cosine graphs keep int8
# (usearch normalises, then scales to [-127, 127]), as Elasticsearch's default int8_hnsw
# does. Measured (32,000 clustered 256-d vectors, 100 candidates rescored, one thread):
# f32 1.16 ms a search and 25 s to build, int8 0.29 ms and 7.9 s, recall@10 1.000 both;
# a quarter of the memory. dot_product and l2 keep float32: their vectors are not
# normalised, and int8 (and float16) would clip large values.
GRAPH_DTYPES = {"cosine": "i8", "dot_product": "f32", "l2": "f32"}
# The search's beam (HNSW's ef) for `count` candidates: usearch's default (64, or the count)
# found 0.94 of the exact top 10 among 100 candidates on real embeddings (the builtin
# embedder's vectors of 24,000 Debian documents, queried by two title words), in float32
# and int8 alike; a beam of 256 found 0.98 (python benchmarks/knn_recall.py). Twice the
# candidates asked for, at least 256: num_candidates still buys recall.
MIN_BEAM = 256
# The beam while a vector is added (HNSW's ef_construction; usearch's default). Adding is
# most of a vector's indexing cost once the field is searched (~0.25-0.5 ms a 256-d vector,
# one thread); 64 halves it, but recall@10 at 100 candidates on the Debian embeddings fell
# 0.9645 -> 0.9235 (python benchmarks/knn_recall.py --vectors 100000, 2026-12-07; synthetic
# clustered 100k stayed 1.0): kept at 128.
EXPANSION_ADD = 128
# vectors added per lock hold: a search waits at most for one chunk (~0.5 ms a 256-d vector;
# 2,048 held searches for a second, and a search's p99 reached 5 s while a graph was built)
ADD_CHUNK = 128


class AnnIndex:
    def __init__(self, dims: int, similarity: str, index=None, covered: int = 0, keys: int = 0):
        from usearch.index import Index  # compiled; imported by the processes that search vectors

        self.dims, self.similarity = dims, similarity
        self.index = index if index is not None else Index(ndim=dims, metric=METRICS[similarity],
                                                           dtype=GRAPH_DTYPES[similarity],
                                                           expansion_add=EXPANSION_ADD)
        self.covered = covered  # document numbers below this were considered for the graph
        self.keys = keys  # keys added (live or not)
        self._lock = threading.Lock()

    def extend(self, matrix: np.ndarray, row_of: np.ndarray, present: np.ndarray, live: np.ndarray,
               upto: int) -> int:
        """Add the present, live document numbers in [covered, upto), a chunk at a time (their
        vectors: matrix[row_of[number]], vectors.VectorColumn.arrays); returns how many."""
        added = 0
        start = self.covered
        while start < upto:
            stop = min(upto, start + ADD_CHUNK)
            rows = np.flatnonzero(present[start:stop] & live[start:stop]) + start
            if len(rows):
                with self._lock:
                    self.index.add(rows.astype(np.uint64), np.ascontiguousarray(matrix[row_of[rows]]), threads=1)
                added += len(rows)
                self.keys += len(rows)
            self.covered = start = stop
        return added

    def search(self, query: np.ndarray, count: int) -> np.ndarray:
        """Up to `count` candidate document numbers (int64), nearest first."""
        with self._lock:
            if len(self.index) == 0:
                return np.zeros(0, dtype=np.int64)
            self.index.expansion_search = max(MIN_BEAM, 2 * count)
            matches = self.index.search(query, min(count, len(self.index)), threads=1)
        return np.asarray(matches.keys, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.index)

    # ------------------------------------------------------------ files
    def save(self, folder: str, field: str, store_id: str) -> None:
        """Write the graph and its description (atomically: a crash leaves the old pair or none)."""
        os.makedirs(folder, exist_ok=True)
        base = os.path.join(folder, field.encode().hex())
        with self._lock:
            self.index.save(base + ".usearch.tmp")
            meta = {"store": store_id, "dims": self.dims, "similarity": self.similarity,
                    "covered": self.covered, "keys": self.keys, "size": len(self.index)}
        with open(base + ".json.tmp", "w") as f:
            json.dump(meta, f)
        os.replace(base + ".usearch.tmp", base + ".usearch")
        os.replace(base + ".json.tmp", base + ".json")

    @classmethod
    def load_all(cls, folder: str, store_id: str) -> dict[str, "AnnIndex"]:
        """The saved indexes of this store in `folder` (field -> AnnIndex); any other is ignored."""
        from usearch.index import Index

        out: dict[str, AnnIndex] = {}
        if not os.path.isdir(folder):
            return out
        for name in os.listdir(folder):
            if not name.endswith(".json"):
                continue
            base = os.path.join(folder, name[:-5])
            try:
                with open(base + ".json") as f:
                    meta = json.load(f)
                if meta.get("store") != store_id:
                    continue
                index = Index.restore(base + ".usearch")
                if index is None or len(index) != meta["size"] or index.ndim != meta["dims"]:
                    continue  # the pair does not match: built again
                field = bytes.fromhex(name[:-5]).decode()
                out[field] = cls(meta["dims"], meta["similarity"], index, meta["covered"], meta["keys"])
            except (OSError, ValueError, KeyError, RuntimeError):
                continue  # unreadable: built again from the stored vectors
        return out
