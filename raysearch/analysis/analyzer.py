"""Text analysis: tokenize -> lowercase -> ascii-fold -> stop words -> stem.

Positions count every token before stop-word removal (as Lucene does), so a
phrase query with a stop word in it still lines up with the document.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from itertools import repeat
from typing import Iterator

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator

from raysearch.analysis.stopwords import ENGLISH

ALL_FIELD = "_all"
# Gap between values (and fields in _all) so that a phrase never spans two of them.
POSITION_GAP = 100
_WORD = re.compile(r"\w+", re.UNICODE)
WORD_PATTERN = _WORD  # the word pattern, for code that must split text as the analyzer does (highlight)
_WORD_OR_NUL = re.compile(r"\w+|\x00", re.UNICODE)  # batch_token_ids: words, and the NUL between texts
_BOUNDARY = -2  # batch_token_ids: the id of that NUL
_UNSEEN = -3  # batch_token_ids: a token not analysed before


class AnalyzerSettings(BaseModel):
    """Per-index analysis; defaults chosen on the judged collections (see README)."""

    model_config = ConfigDict(extra="forbid")
    stemming: str | None = "english"
    stopwords: str | None = "english"
    ascii_folding: bool = True

    @field_validator("stemming")
    @classmethod
    def _known_stemmer(cls, value: str | None) -> str | None:
        if value is not None:
            import Stemmer

            known = Stemmer.algorithms()
            if value not in known:
                raise ValueError(f"unknown stemmer {value[:40]!r}; use null or one of {', '.join(known)}")
        return value

    @field_validator("stopwords")
    @classmethod
    def _known_stopwords(cls, value: str | None) -> str | None:
        if value not in (None, "english"):
            raise ValueError(f"unknown stopwords list {value[:40]!r}; use 'english' or null")
        return value


def fold_ascii(text: str) -> str:
    """'Café' -> 'Cafe': strip combining marks after NFKD decomposition."""
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@lru_cache(maxsize=8)
def _stemmer(language: str):
    import Stemmer  # PyStemmer: Snowball stemmers in C

    return Stemmer.Stemmer(language)


class Analyzer:
    """Turns text into (term, position) pairs according to AnalyzerSettings."""

    def __init__(self, settings: AnalyzerSettings | None = None):
        self.settings = settings or AnalyzerSettings()
        if self.settings.stopwords not in (None, "english"):
            raise ValueError(f"unknown stopwords list {self.settings.stopwords!r}; use 'english' or null")
        self._stop = ENGLISH if self.settings.stopwords == "english" else frozenset()
        self._stem_words = _stemmer(self.settings.stemming).stemWords if self.settings.stemming else None
        self._cache: dict[str, str | None] = {}
        # Term ids for whole-batch indexing (batch_token_ids): raw token -> id (-1: stop word), and
        # id -> term. Ids are only meaningful within one batch: start_batch may renumber.
        self._token_ids: dict[str, int] = {}
        self._term_ids: dict[str, int] = {}
        self.vocabulary: list[str] = []

    def _normalize(self, token: str) -> str | None:
        """Lowercased/folded/stemmed form of one raw token, or None for a stop word."""
        cached = self._cache.get(token, False)
        if cached is not False:
            return cached
        out = self._term_of(token)
        if len(self._cache) < 500_000:
            self._cache[token] = out
        return out

    def _term_of(self, token: str) -> str | None:
        """`_normalize` without its cache: `_terms_of` of one token."""
        return self._terms_of([token])[0]

    def normalized(self, text: str) -> list[str | None]:
        """The term of every raw token of `text`, None for stop words (index = position)."""
        cache, normalize = self._cache, self._normalize
        out = []
        for token in _WORD.findall(text):
            term = cache.get(token, False)
            out.append(normalize(token) if term is False else term)
        return out

    def start_batch(self, max_terms: int = 300_000) -> None:
        """Bound the id tables of a long-lived worker (a corpus of hashes or ids has no end
        of distinct tokens; 12 workers each hold theirs, ~100 bytes a token), like the
        500,000-token bound of `_cache`; ids handed out before this call are void after it."""
        if len(self._term_ids) > max_terms or len(self._token_ids) > 2 * max_terms:
            self._token_ids, self._term_ids, self.vocabulary = {}, {}, []

    def term_id(self, term: str) -> int:
        """The id of a term (assigned on first sight, until the next start_batch)."""
        tid = self._term_ids.get(term)
        if tid is None:
            tid = self._term_ids[term] = len(self.vocabulary)
            self.vocabulary.append(term)
        return tid

    def batch_token_ids(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The term ids of the tokens of many texts at once -> (ids, starts, stops): all their
        tokens as one int32 stream, text after text (-1 for stop words), and where each text's
        ids start and stop in it. One regex pass over the texts joined by NUL (not a word
        character, so it splits words as the end of a text does, and it is matched as a token
        of its own to mark the boundary), one dict lookup pass in C, and the tokens not seen
        before analysed together (the stemmer called once for all of them): per-text Python
        work was most of the analysis of a batch's many short values."""
        if not texts:
            empty = np.zeros(0, dtype=np.int64)
            return np.zeros(0, dtype=np.int32), empty, empty
        joined = "\x00".join(texts)
        if joined.count("\x00") != len(texts) - 1:  # a text holds NUL: as a space it splits words alike
            joined = "\x00".join(t.replace("\x00", " ") for t in texts)
        tokens = _WORD_OR_NUL.findall(joined)
        known = self._token_ids
        known["\x00"] = _BOUNDARY
        stream = np.fromiter(map(known.get, tokens, repeat(_UNSEEN)), dtype=np.int32, count=len(tokens))
        unseen = np.flatnonzero(stream == _UNSEEN)
        if len(unseen):  # most batches bring some (names, versions): only those are looked at
            fresh_of = [tokens[i] for i in unseen.tolist()]
            fresh = list(dict.fromkeys(fresh_of))  # first-seen order: ids do not vary by run
            for token, term in zip(fresh, self._terms_of(fresh)):
                known[token] = -1 if term is None else self.term_id(term)
            stream[unseen] = np.fromiter(map(known.__getitem__, fresh_of), dtype=np.int32, count=len(fresh_of))
        bounds = np.flatnonzero(stream == _BOUNDARY)
        starts = np.concatenate(([0], bounds + 1))
        stops = np.concatenate((bounds, [len(stream)]))
        return stream, starts, stops

    def _terms_of(self, tokens: list[str]) -> list[str | None]:
        """Lowercased/folded/stemmed form of each raw token (None for a stop word), with one
        call of the stemmer for all of them."""
        terms = [t.lower() for t in tokens]
        if self.settings.ascii_folding:
            terms = list(map(fold_ascii, terms))
        out: list[str | None] = [None] * len(terms)
        kept = [i for i, t in enumerate(terms) if t not in self._stop]
        words = [terms[i] for i in kept]
        if self._stem_words is not None:
            words = self._stem_words(words)
        for i, word in zip(kept, words):
            out[i] = word or None
        return out

    def tokens(self, text: str, start: int = 0) -> Iterator[tuple[str, int]]:
        """Yields (term, position); positions start at `start`."""
        for position, term in enumerate(self.normalized(text), start):
            if term is not None:
                yield term, position

    def terms(self, text: str) -> list[str]:
        return [t for t, _ in self.tokens(text)]

    def raw_token_count(self, text: str) -> int:
        return sum(1 for _ in _WORD.finditer(text))


@dataclass
class AnalyzedField:
    name: str
    length: int  # number of indexed tokens (BM25's dl)
    postings: dict[str, list[int]]  # term -> positions


def iter_text_fields(doc: dict, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(field path, string value) for every string in the document except its id.

    Nested objects give dotted paths ('a.b'); lists give one value per string.
    """
    for key, value in doc.items():
        if not prefix and key == "id":
            continue
        path = f"{prefix}{key}"
        yield from _iter_value(path, value)


def _iter_value(path: str, value) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        yield from iter_text_fields(value, prefix=path + ".")
    elif isinstance(value, list):
        for item in value:
            yield from _iter_value(path, item)


KEYWORD_TYPE = "keyword"


def analyze_document(doc: dict, analyzer: Analyzer, types: dict[str, str] | None = None) -> list[AnalyzedField]:
    """Every string field under its own name and under `_all`, with positions.

    Each value is tokenised once; its positions are then shifted into the field
    and into `_all` (whose values follow one another, POSITION_GAP apart).
    `types` names the declared non-text fields (schema.py): a keyword value is one
    exact term of its own field (not of `_all`); other typed fields are not words."""
    fields: dict[str, AnalyzedField] = {}
    next_pos: dict[str, int] = {}
    types = types or {}
    for name, text in iter_text_fields(doc):
        ftype = types.get(name)
        if ftype is not None and ftype != KEYWORD_TYPE:
            continue  # numbers, booleans and dates live in doc values only
        relative: dict[str, list[int]] = {}
        last = -1  # relative position of the last indexed token
        if ftype == KEYWORD_TYPE:
            relative, last = {text: [0]}, 0
        else:
            for i, term in enumerate(analyzer.normalized(text)):
                if term is not None:
                    positions = relative.get(term)
                    if positions is None:
                        relative[term] = [i]
                    else:
                        positions.append(i)
                    last = i
        length = sum(map(len, relative.values()))
        for fname in ((name,) if ftype == KEYWORD_TYPE else (name, ALL_FIELD)):
            field = fields.get(fname)
            if field is None:
                field = fields[fname] = AnalyzedField(fname, 0, {})
            start = next_pos.get(fname, 0)
            postings = field.postings
            for term, positions in relative.items():
                shifted = [p + start for p in positions] if start else list(positions)
                existing = postings.get(term)
                if existing is None:
                    postings[term] = shifted
                else:
                    existing.extend(shifted)
            field.length += length
            next_pos[fname] = max(start, start + last + 1) + POSITION_GAP
    return [f for f in fields.values() if f.length > 0]
