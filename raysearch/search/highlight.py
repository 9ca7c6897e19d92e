"""Highlighting: snippets of a hit's string fields with the matching words in <em>.

A word matches when its analyzed form (the same analyzer as the index:
lowercase, folding, stop words, stemming) is a term of a TERM or PHRASE clause,
or starts with the prefix of a PREFIX clause; must-not clauses are ignored. A
clause restricted to some fields (`title:word`) highlights only those fields;
a clause on `_all` highlights every field.

Like Elasticsearch's plain highlighter, the text is returned as it is stored
(no HTML escaping) and snippets are in document order.
"""

from __future__ import annotations

from typing import Iterable

from raysearch.analysis.analyzer import ALL_FIELD, Analyzer, iter_text_fields
from raysearch.search.query import MUST_NOT, PREFIX

FRAGMENT_CHARS = 150
MAX_FRAGMENTS = 3
PRE_TAG, POST_TAG = "<em>", "</em>"
_LEAD_CHARS = 30  # context kept before the first match of a snippet

from raysearch.analysis.analyzer import WORD_PATTERN as _WORD  # offsets line up with the analyzer's tokens


class _Matcher:
    """Which analyzed terms / prefixes highlight which fields."""

    def __init__(self, aclauses: Iterable, analyzer: Analyzer):
        self.analyzer = analyzer
        self.terms: dict[str, set[str] | None] = {}  # term -> fields (None: every field)
        self.prefixes: list[tuple[str, set[str] | None]] = []
        for c in aclauses:
            if c.occur == MUST_NOT:
                continue
            names = {f for f, _ in (getattr(c, "fields", None) or [(ALL_FIELD, 1.0)])}
            scope = None if ALL_FIELD in names else names
            if c.kind == PREFIX:
                if c.prefix:
                    self.prefixes.append((c.prefix, scope))
                continue
            for t in c.terms:
                if scope is None:
                    self.terms[t] = None
                elif t not in self.terms:
                    self.terms[t] = set(scope)
                elif self.terms[t] is not None:
                    self.terms[t] |= scope

    def __bool__(self) -> bool:
        return bool(self.terms or self.prefixes)

    def _term(self, word: str) -> str | None:
        normalize = getattr(self.analyzer, "_normalize", None)
        if normalize is not None:
            return normalize(word)
        terms = self.analyzer.terms(word)
        return terms[0] if terms else None

    def spans(self, field: str, text: str) -> list[tuple[int, int, str]]:
        """(start, end, term) of every matching word of `text` in `field`."""
        out = []
        for m in _WORD.finditer(text):
            term = self._term(m.group())
            if term is None:
                continue
            if term in self.terms and _in_scope(field, self.terms[term]):
                out.append((m.start(), m.end(), term))
                continue
            for prefix, scope in self.prefixes:
                if term.startswith(prefix) and _in_scope(field, scope):
                    out.append((m.start(), m.end(), term))
                    break
        return out


def _in_scope(field: str, scope: set[str] | None) -> bool:
    return scope is None or field in scope


def highlight(document: dict, aclauses, analyzer: Analyzer, fragment_chars: int = FRAGMENT_CHARS,
              max_fragments: int = MAX_FRAGMENTS) -> dict[str, list[str]]:
    """{field: [snippet, ...]} for every string field of `document` with a match."""
    matcher = _Matcher(aclauses, analyzer)
    if not matcher:
        return {}
    candidates: dict[str, list[tuple[tuple, int, int, str, list]]] = {}
    for value_no, (field, text) in enumerate(iter_text_fields(document)):
        spans = matcher.spans(field, text)
        if not spans:
            continue
        for start, end, inside in _windows(text, spans, fragment_chars):
            score = (len({s[2] for s in inside}), len(inside))
            candidates.setdefault(field, []).append((score, value_no, start, text, inside, end))
    out: dict[str, list[str]] = {}
    for field, cands in candidates.items():
        chosen: list[tuple[int, int, int, str, list]] = []
        # Best windows first (distinct terms, then matches, then earliest); no overlaps.
        for score, value_no, start, text, inside, end in sorted(cands, key=lambda c: (-c[0][0], -c[0][1], c[1], c[2])):
            if any(v == value_no and start < e and s < end for v, s, e, _, _ in chosen):
                continue
            chosen.append((value_no, start, end, text, inside))
            if len(chosen) >= max_fragments:
                break
        chosen.sort(key=lambda c: (c[0], c[1]))
        out[field] = [_render(text, start, end, inside) for _, start, end, text, inside in chosen]
    return out


def _windows(text: str, spans: list[tuple[int, int, str]], size: int):
    """One candidate window per match that is not already inside the previous window:
    (start, end, matches fully inside), cut at word boundaries."""
    n = len(text)
    if n <= size:
        yield 0, n, spans
        return
    last_end = -1
    for s, e, _ in spans:
        if s < last_end:
            continue
        start = _word_start(text, max(0, s - _LEAD_CHARS), s)
        end = min(n, start + size)
        if end == n:  # near the end: use the whole budget
            start = _word_start(text, max(0, n - size), s)
        end = max(_word_end(text, end), e)
        inside = [sp for sp in spans if sp[0] >= start and sp[1] <= end]
        last_end = end
        yield start, end, inside


def _word_start(text: str, pos: int, limit: int) -> int:
    """`pos`, moved forward past a cut word (never past `limit`)."""
    if pos == 0 or text[pos - 1].isspace() or not text[pos - 1].isalnum():
        return pos
    while pos < limit and not text[pos].isspace():
        pos += 1
    while pos < limit and text[pos].isspace():
        pos += 1
    return pos


def _word_end(text: str, pos: int) -> int:
    """`pos`, moved back so that no word is cut (kept if that would empty the window much)."""
    n = len(text)
    if pos >= n or not text[pos].isalnum() or not text[pos - 1].isalnum():
        return pos
    back = pos
    while back > 0 and text[back - 1].isalnum():
        back -= 1
    return back if pos - back < 30 else pos


def _render(text: str, start: int, end: int, spans: list[tuple[int, int, str]]) -> str:
    parts, cursor = [], start
    for s, e, _ in spans:
        parts.append(text[cursor:s])
        parts.append(PRE_TAG + text[s:e] + POST_TAG)
        cursor = e
    parts.append(text[cursor:end])
    return "".join(parts).strip()
