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

import threading
from pathlib import Path

import numpy as np

BUILTIN_DIMS = 256
_lock = threading.Lock()
_model = None


def _load():
    global _model
    with _lock:
        if _model is None:
            import wordllama  # imported here: 0.1 s, and only processes that embed pay it

            _model = wordllama.WordLlama.load(cache_dir=Path(wordllama.__file__).parent, dim=BUILTIN_DIMS,
                                              disable_download=True)
        return _model


def embed(texts: list[str]) -> np.ndarray:
    """(len(texts), 256) float32, each row of unit length; a text with no known word is a
    row of zeros (the caller leaves such a document without a vector)."""
    if not texts:
        return np.zeros((0, BUILTIN_DIMS), dtype=np.float32)
    # lower-cased: its tokenizer is a cased LLM's, and "MICROWAVE" would be other tokens than
    # "microwave" (Vaswani's queries are upper case: kNN nDCG@10 0.06 cased, lower-cased below)
    texts = [t.lower() for t in texts]
    vectors = np.asarray(_load().embed(texts, norm=False, batch_size=512), dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


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
