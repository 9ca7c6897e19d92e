"""Lenient query syntax, like Elasticsearch's simple_query_string.

    words          OR by default (operator=and makes each a must)
    +word  -word   must / must not
    "a phrase"     consecutive terms (positions)
    field:word     one field only (also field:"a phrase", field:pre*)
    prefix*        terms starting with prefix (bounded expansion)
    word~ word~1   terms within 1 or 2 edits (~ alone: Elasticsearch's AUTO by length; fuzzy.py)
    field:[a TO b] a range of a typed field ([ ] inclusive, { } exclusive, * open);
    field:>=a      also >, <, <= (typed fields; see plan.py for keyword exact terms)

A malformed part (lone quote, unknown `field:`, stray + or -) is read as plain
words, never an error: natural-language queries with colons, quotes and dashes
must run as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from raysearch.errors import InvalidRequest

SHOULD, MUST, MUST_NOT = "should", "must", "must_not"
TERM, PHRASE, PREFIX, RANGE, FUZZY = "term", "phrase", "prefix", "range", "fuzzy"
AUTO = -1  # fuzziness chosen by the term's length (fuzzy.auto_edits)

_FIELD = re.compile(r"^([^\s:\"]+):(.+)$", re.S)
_PREFIX = re.compile(r"^(\w+)\*$", re.UNICODE)
_FUZZY = re.compile(r"^(\w+)~([012])?$", re.UNICODE)
_RANGE = re.compile(r"^([\[{])\s*(\S+)\s+TO\s+(\S+)\s*([\]}])$", re.S)
_COMPARE = re.compile(r"^(>=|<=|>|<)(.+)$", re.S)


@dataclass(frozen=True)
class Clause:
    occur: str
    kind: str
    text: str
    field: str | None = None
    edits: int | None = None  # FUZZY: 0-2, or AUTO
    lenient: bool = False  # PREFIX read from the last word (prefix_last): cut, not refused, past the bound


def _split(query: str) -> list[tuple[str, bool]]:
    """Pieces of the query: (text, is_quoted). An unmatched quote is dropped."""
    pieces: list[tuple[str, bool]] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch.isspace():
            i += 1
            continue
        # A token, possibly with a quoted part: +"a b", title:"a b"
        start = i
        while i < n and not query[i].isspace() and query[i] != '"':
            i += 1
        head = query[start:i]
        bracket = re.search(r":[\[{]", head)
        if bracket and not head.endswith(("]", "}")):  # field:[a TO b] spans spaces
            close = re.compile(r"[\]}]").search(query, i)
            if close:
                i = close.end()
                pieces.append((query[start:i], False))
                continue
        if i < n and query[i] == '"':
            close = query.find('"', i + 1)
            if close == -1:  # lone quote: the rest is plain words
                if head:
                    pieces.append((head, False))
                pieces.append((query[i + 1 :], False))
                break
            pieces.append((head + "\x00" + query[i + 1 : close], True))
            i = close + 1
        else:
            pieces.append((head, False))
    return pieces


def parse_query(query: str, is_field: Callable[[str], bool], max_clauses: int = 1024) -> list[Clause]:
    clauses: list[Clause] = []
    for piece, quoted in _split(query):
        if quoted:
            head, phrase = piece.split("\x00", 1)
            occur, head = _occur(head)
            field = None
            if head.endswith(":") and is_field(head[:-1]):
                field = head[:-1]
            elif head:
                clauses.extend(Clause(occur, TERM, w) for w in head.split())
            if phrase.strip():
                clauses.append(Clause(occur, PHRASE, phrase, field))
        elif _RANGE.search(piece.split(":", 1)[-1] if ":" in piece else ""):
            clauses.append(_range_clause(piece, is_field) or Clause(SHOULD, TERM, piece))
        else:
            for token in piece.split():
                clauses.append(_token_clause(token, is_field))
        if len(clauses) > max_clauses:
            raise InvalidRequest(f"query has more than {max_clauses} clauses")
    return [c for c in clauses if c is not None]


def _occur(token: str) -> tuple[str, str]:
    if len(token) > 1 and token[0] == "+":
        return MUST, token[1:]
    if len(token) > 1 and token[0] == "-":
        return MUST_NOT, token[1:]
    if token in ("+", "-"):
        return SHOULD, ""
    return SHOULD, token


def _range_clause(piece: str, is_field: Callable[[str], bool]) -> Clause | None:
    """`field:[a TO b]` -> a RANGE clause whose text is the bracketed part (read by plan.py)."""
    occur, body = _occur(piece)
    match = _FIELD.match(body)
    if match and is_field(match.group(1)) and _RANGE.match(match.group(2)):
        return Clause(occur, RANGE, match.group(2), match.group(1))
    return None


def range_bounds(text: str) -> list[tuple[str, str]] | None:
    """'[a TO b]' -> [("gte", "a"), ("lte", "b")] ('*' = open), '>=a' -> [("gte", "a")]; None if not a range."""
    match = _RANGE.match(text)
    if match:
        low_open, low, high, high_close = match.groups()
        bounds = []
        if low != "*":
            bounds.append(("gte" if low_open == "[" else "gt", low))
        if high != "*":
            bounds.append(("lte" if high_close == "]" else "lt", high))
        return bounds
    match = _COMPARE.match(text)
    if match:
        op = {">=": "gte", "<=": "lte", ">": "gt", "<": "lt"}[match.group(1)]
        return [(op, match.group(2))]
    return None


def _token_clause(token: str, is_field: Callable[[str], bool]) -> Clause | None:
    occur, body = _occur(token)
    if not body:
        return None
    field = None
    match = _FIELD.match(body)
    if match and is_field(match.group(1)):
        field, body = match.group(1), match.group(2)
        if _COMPARE.match(body):
            return Clause(occur, RANGE, body, field)
    prefix = _PREFIX.match(body)
    if prefix:
        return Clause(occur, PREFIX, prefix.group(1), field)
    fuzzy = _FUZZY.match(body)
    if fuzzy:
        edits = AUTO if fuzzy.group(2) is None else int(fuzzy.group(2))
        return Clause(occur, FUZZY, fuzzy.group(1), field, edits)
    return Clause(occur, TERM, body, field)
