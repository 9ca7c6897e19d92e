"""Lenient query syntax, like Elasticsearch's simple_query_string.

    words          OR by default (operator=and makes each a must)
    +word  -word   must / must not
    "a phrase"     consecutive terms (positions)
    field:word     one field only (also field:"a phrase", field:pre*)
    prefix*        terms starting with prefix (bounded expansion)

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
TERM, PHRASE, PREFIX = "term", "phrase", "prefix"

_FIELD = re.compile(r"^([^\s:\"]+):(.+)$", re.S)
_PREFIX = re.compile(r"^(\w+)\*$", re.UNICODE)


@dataclass(frozen=True)
class Clause:
    occur: str
    kind: str
    text: str
    field: str | None = None


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


def _token_clause(token: str, is_field: Callable[[str], bool]) -> Clause | None:
    occur, body = _occur(token)
    if not body:
        return None
    field = None
    match = _FIELD.match(body)
    if match and is_field(match.group(1)):
        field, body = match.group(1), match.group(2)
    prefix = _PREFIX.match(body)
    if prefix:
        return Clause(occur, PREFIX, prefix.group(1), field)
    return Clause(occur, TERM, body, field)
