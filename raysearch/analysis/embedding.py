"""The builtin embedder: text -> 256-dimension vectors, offline.

WordLlama (pip `wordllama`) ships its static token embeddings (the "l2_supercat" model,
256 dimensions) and its tokenizer inside the wheel: nothing is downloaded, ever, which a
service behind a firewall needs. Embedding is a tokenizer call and an average of rows,
~50,000 short texts a second on one core, over a whole batch at once (never per document
in Python). Its quality is that of averaged word vectors: useful for synonyms and related
words, below a transformer -- which a user brings as vectors of their own.

WordLlama 0.4's own lookup looks for the tokenizer under `tokenizer/` while the wheel has
it under `tokenizers/`; loading with the package's own folder as its cache directory finds
both files where the cache layout puts them, and `disable_download` makes sure of it.
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import numpy as np

BUILTIN_DIMS = 256
MAX_TOKENS = 2048  # of one text (its first ones): bounds the work a huge field costs
TOKEN_BUDGET = 8192  # token rows gathered at once (x 1 KB: cache-sized; 200k rows at once ran 2x slower)
_lock = threading.Lock()
_model = None


def _load():
    """(tokenizer without padding, embedding matrix) of the shipped model."""
    global _model
    with _lock:
        if _model is None:
            import wordllama  # imported here: 0.1 s, and only processes that embed pay it

            model = wordllama.WordLlama.load(cache_dir=Path(wordllama.__file__).parent, dim=BUILTIN_DIMS,
                                             disable_download=True)
            tokenizer = model.tokenizer
            tokenizer.no_padding()  # WordLlama pads a batch to its longest text; we pool ragged
            _model = (tokenizer, np.ascontiguousarray(model.embedding, dtype=np.float32))
        return _model


def embed(texts: list[str]) -> np.ndarray:
    """(len(texts), 256) float32, each row of unit length; a text with no known word is a
    row of zeros (the caller leaves such a document without a vector).

    WordLlama's own `embed` pads every batch to its longest text, which on package
    descriptions (a few very long ones) made it 1.6 ms a document; here each text's token
    rows are summed with one `np.add.reduceat` over the batch's tokens laid end to end (the
    same mean pooling, up to a factor the normalisation removes): 0.15 ms a Debian description
    against 1.6 (0.06 of it the tokenizer)."""
    out = np.zeros((len(texts), BUILTIN_DIMS), dtype=np.float32)
    if not texts:
        return out
    tokenizer, table = _load()
    # lower-cased: its tokenizer is a cased LLM's, and "MICROWAVE" would be other tokens than
    # "microwave" (Vaswani's queries are upper case: kNN nDCG@10 0.06 cased, 0.36 lower-cased)
    encodings = tokenizer.encode_batch([t.lower() for t in texts], add_special_tokens=False)
    ids_of = [e.ids[:MAX_TOKENS] for e in encodings]
    start = 0
    while start < len(texts):  # a slice of texts at a time: at most TOKEN_BUDGET token rows in memory
        stop, tokens = start, 0
        while stop < len(texts) and (stop == start or tokens + len(ids_of[stop]) <= TOKEN_BUDGET):
            tokens += len(ids_of[stop])
            stop += 1
        lengths = np.fromiter((len(ids_of[i]) for i in range(start, stop)), dtype=np.int64, count=stop - start)
        if tokens:
            ids = np.fromiter(itertools.chain.from_iterable(ids_of[start:stop]), dtype=np.int64, count=tokens)
            np.clip(ids, 0, len(table) - 1, out=ids)
            starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
            nonempty = lengths > 0
            sums = np.add.reduceat(table[ids], starts[nonempty], axis=0)
            out[start:stop][nonempty] = sums
        start = stop
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)


def text_of(doc: dict, fields: list[str]) -> str:
    """The words of a document's `fields` (strings, or lists of strings), joined."""
    parts = []
    for name in fields:
        value = doc.get(name)
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):
            parts.extend(v for v in value if isinstance(v, str))
    return "\n".join(parts)


def fill_vectors(docs: list[dict], fields: list[str], target: str) -> int:
    """Give each document without a `target` vector one embedded from its `fields`, for the
    whole batch in one call; returns how many were embedded."""
    missing = [doc for doc in docs if doc.get(target) is None]
    if not missing:
        return 0
    vectors = embed([text_of(doc, fields) for doc in missing])
    filled = 0
    for doc, vector in zip(missing, vectors):
        if vector.any():
            doc[target] = vector
            filled += 1
    return filled
