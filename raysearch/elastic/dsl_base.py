"""The pieces every part of the Elasticsearch translation shares (pure; never imports Ray).

- the field-type maps between Elasticsearch and raysearch (`ES_TYPES`, `RS_TYPES`);
- `IndexView`, the description of an index a translation reads (typed fields, text
  fields, analysis);
- `Flat`, raysearch's flat query shape every query translates into;
- the argument checks the query translators share (`_obj`, `_single_field`,
  `_check_field_name`, `_options`, `_tokens`, `_keyword_atom`).

The entry point is `query_dsl.py`; this module imports nothing else from the package
but `errors`, so every other translation module can import it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any, Callable

from raysearch import schema
from raysearch.elastic.errors import parsing, unsupported

_WORD = re.compile(r"\w+", re.UNICODE)
DEFAULT_FIELDS = ""  # "the index's default fields" as a `fields` spec
MAX_DEPTH = 20
_FIELD_NAME = re.compile(r'^[^\s:"\\*\[\]{}()^~]+$')

# Elasticsearch field types -> raysearch types
ES_TYPES = {
    "text": schema.TEXT, "match_only_text": schema.TEXT,
    "keyword": schema.KEYWORD, "constant_keyword": schema.KEYWORD,
    "long": schema.INTEGER, "integer": schema.INTEGER, "short": schema.INTEGER, "byte": schema.INTEGER,
    "unsigned_long": schema.INTEGER,
    "double": schema.FLOAT, "float": schema.FLOAT, "half_float": schema.FLOAT, "scaled_float": schema.FLOAT,
    "boolean": schema.BOOLEAN,
    "date": schema.DATE,
}
# raysearch types -> the Elasticsearch type shown by _mapping
RS_TYPES = {schema.TEXT: "text", schema.KEYWORD: "keyword", schema.INTEGER: "long", schema.FLOAT: "double",
            schema.BOOLEAN: "boolean", schema.DATE: "date"}


@dataclass
class IndexView:
    types: dict[str, str]  # typed (exact) fields -> raysearch type
    text_fields: set[str]  # text fields that exist (declared, or some document has them)
    analyze: Callable[[str], list[str]] = lambda text: [w.lower() for w in _WORD.findall(text)]

    def is_text(self, name: str) -> bool:
        return name in self.text_fields and name not in self.types


@dataclass
class Flat:
    """raysearch's shape: docs match every filter and `must` clause, no `must_not` clause,
    and at least one clause of each required group; score = sum of must/group/should clauses."""

    must: list[str] = dc_field(default_factory=list)
    should: list[str] = dc_field(default_factory=list)  # optional: scores only
    groups: list[list[str]] = dc_field(default_factory=list)  # required disjunctions
    must_not: list[str] = dc_field(default_factory=list)
    filters: list = dc_field(default_factory=list)  # raysearch filter specs (an `and`)
    none: bool = False  # matches nothing
    raw: tuple | None = None  # (q, fields spec, operator) of a query_string
    fields: str | None = None  # the `fields` spec unfielded clauses use (multi_match)

    def scoring(self) -> bool:
        return bool(self.must or self.should or self.groups or self.raw)

    def only_filters(self) -> bool:
        return not (self.scoring() or self.must_not)

    def add_group(self, atoms: list[str]) -> None:
        if len(atoms) == 1:
            self.must.append(atoms[0])
        elif atoms:
            self.groups.append(atoms)
        else:
            self.none = True

    def conj(self, other: "Flat") -> "Flat":
        self.none |= other.none
        self.must += other.must
        self.should += other.should
        self.groups += other.groups
        self.must_not += other.must_not
        self.filters += other.filters
        if other.raw is not None:
            if self.raw is not None:
                raise unsupported("two query_string/simple_query_string queries in one search")
            self.raw = other.raw
        self.fields = _same_fields(self.fields, other.fields)
        return self


def _same_fields(a: str | None, b: str | None) -> str | None:
    if a is None or a == b:
        return b
    if b is None:
        return a
    raise unsupported(f"multi_match queries over different field lists ({a or 'default'} and {b or 'default'}) "
                      f"in one search")


# ------------------------------------------------------------------ argument checks shared by the queries
def _obj(body: Any, kind: str) -> dict:
    if not isinstance(body, dict):
        raise parsing(f"[{kind}] query malformed, expected an object")
    return body


def _single_field(body: Any, kind: str) -> tuple[str, Any]:
    body = {k: v for k, v in _obj(body, kind).items() if k not in ("boost", "_name")} \
        if kind in ("terms", "ids", "exists") else _obj(body, kind)
    if len(body) != 1:
        raise parsing(f"[{kind}] query doesn't support multiple fields, found {sorted(body)}")
    (name, value), = body.items()
    _check_field_name(name, kind)
    return name, value


def _check_field_name(name: Any, kind: str) -> None:
    if not isinstance(name, str) or not _FIELD_NAME.match(name):
        raise unsupported(f"the field name {str(name)[:60]!r} in [{kind}] (wildcards and special characters "
                          f"in field names)")


def _options(opts: dict, kind: str, allowed: set[str], ignored: set[str] = frozenset()) -> None:
    for key, value in opts.items():
        if key in ignored or key == "_name":
            continue
        if key == "boost":
            if value not in (1, 1.0):
                raise unsupported(f"'boost' on a [{kind}] query (per-query boosts; use multi_match fields "
                                  f"such as title^2)")
            continue
        if key not in allowed:
            raise unsupported(f"the option [{key}] of the [{kind}] query")


def _tokens(text: Any, kind: str) -> list[str]:
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise parsing(f"[{kind}] query text must be a string or a number, got {text!r}")
    return _WORD.findall(str(text))


def _keyword_atom(name: str, value: Any) -> str | None:
    """`field:"value"` (an exact keyword term in raysearch's syntax), if the value can be written so."""
    if isinstance(value, str) and value.strip() and '"' not in value and "\\" not in value \
            and "\x00" not in value and value == value.strip():
        return f'{name}:"{value}"'
    return None
