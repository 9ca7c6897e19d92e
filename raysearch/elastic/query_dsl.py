"""Elasticsearch query DSL -> a raysearch search request (pure; never imports Ray).

raysearch's query is flat: required (`+a`), optional (`a`) and excluded (`-a`) clauses
in its lenient syntax, where optional clauses are required-at-least-one when nothing
is required (Lucene's BooleanQuery), plus a filter tree that does not score. An
Elasticsearch query is translated into that shape (`Flat`) or refused with a 400
naming what cannot be expressed faithfully:

- scoring queries (`match`, `multi_match`, `match_phrase`, `query_string`,
  `simple_query_string`, `term` on a text field) become clauses of `q`, always
  fielded (`title:word`) except multi_match's, which use the request's `fields`;
- `term`, `terms`, `range`, `exists`, `ids` on typed fields, and `bool.filter`,
  become raysearch filters (they select, they do not score);
- `bool` combines them when the combination is one raysearch can run.

The index is described by an `IndexView` (its typed fields, its searchable text
fields, its analysis), so the translation needs no service.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field as dc_field
from typing import Any, Callable

from raysearch import schema
from raysearch.elastic import vectors as es_vectors
from raysearch.elastic.errors import ElasticError, parsing, unsupported

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


# ------------------------------------------------------------------ entry points
def translate_search(body: dict, view: IndexView, max_size: int = 10_000) -> dict:
    """A search body -> {"request": SearchRequest params, "source": _source spec,
    "track_total_hits": ..., "aggs": agg specs (for the response), "sorted_by_field": bool}."""
    known = {"query", "from", "size", "sort", "search_after", "_source", "track_total_hits", "aggs",
             "aggregations", "timeout", "track_scores", "stored_fields", "version", "seq_no_primary_term",
             "explain", "highlight", "min_score", "post_filter", "collapse", "rescore", "suggest", "pit",
             "runtime_mappings", "fields", "docvalue_fields", "script_fields", "knn", "profile",
             "indices_boost", "terminate_after", "rank", "retriever", "slice", "stats", "ext"}
    for key in body:
        if key not in known:
            raise parsing(f"Unknown key for a START_OBJECT in [{key}].")
    for key in ("highlight", "min_score", "post_filter", "collapse", "rescore", "suggest", "pit",
                "runtime_mappings", "fields", "docvalue_fields", "script_fields", "profile",
                "indices_boost", "terminate_after", "rank", "slice", "explain", "stored_fields"):
        if key in body:
            raise unsupported(f"'{key}' in a search")
    if "aggs" in body and "aggregations" in body:
        raise parsing("Found two aggregation definitions: [aggs] and [aggregations]")
    query, vector_params = body.get("query"), {}
    if "knn" in body or "retriever" in body:  # elastic/vectors.py
        query, vector_params = es_vectors.translate(body, lambda q: translate_query(q, view))
    request = translate_query(query, view)
    if vector_params.get("filter") is not None and request.get("filter") is not None:
        request["filter"] = {"and": [request["filter"], vector_params.pop("filter")]}
    request.update(vector_params)
    for key in ("from", "size"):
        if key in body:
            value = body[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise parsing(f"[{key}] must be a non-negative integer, got {value!r}")
            request[key] = value
    sort = translate_sort(body.get("sort"))
    if sort is not None:
        request["sort"] = sort
    if body.get("search_after") is not None:
        if not isinstance(body["search_after"], list):
            raise parsing("[search_after] must be an array of the previous page's last `sort` values")
        if sort is None:
            request["sort"] = ["_score"]
        request["search_after"] = body["search_after"]
    aggs = body.get("aggs", body.get("aggregations"))
    facets, renderers = translate_aggs(aggs)
    if facets:
        request["facets"] = facets
    tth = body.get("track_total_hits", True)
    if not isinstance(tth, (bool, int)):
        raise parsing("[track_total_hits] must be a boolean or an integer")
    return {"request": request, "source": body.get("_source", True), "track_total_hits": tth,
            "aggs": renderers, "sorted_by_field": sort is not None and "_score" not in sort,
            "track_scores": bool(body.get("track_scores"))}


def translate_query(query: Any, view: IndexView) -> dict:
    """An Elasticsearch query (None = match_all) -> SearchRequest params q/fields/operator/filter."""
    flat = Flat() if query is None else _translate(query, view, 0)
    return emit(flat)


def emit(flat: Flat) -> dict:
    out: dict[str, Any] = {}
    if flat.none:
        return {"filter": {"or": []}}  # an `or` of nothing matches nothing
    if len(flat.groups) > 1:
        raise unsupported("more than one required 'or' of scoring queries (e.g. two multi-word match queries "
                          "in must; use operator 'and', or put them in one bool.should)")
    if flat.groups and (flat.must or flat.should):
        raise unsupported("a multi-word match (operator 'or') or a should group required alongside other "
                          "scoring clauses (use operator 'and' or minimum_should_match)")
    if flat.should and not flat.must:
        raise unsupported("optional should clauses without a scoring must clause (a bool with filter and "
                          "should matches every filtered document; set minimum_should_match: 1 or use must)")
    if flat.raw is not None:
        if flat.must or flat.groups or flat.should:
            raise unsupported("query_string/simple_query_string combined with other scoring queries")
        q, fields, operator = flat.raw
        parts = [q] + [f"-{a}" for a in flat.must_not]
        out.update(q=" ".join(parts), operator=operator)
        flat.fields = _same_fields(flat.fields, fields)
    else:
        positive = flat.must or flat.groups
        if flat.must_not and not positive:
            raise unsupported("must_not of text queries (match, match_phrase...) without a scoring must "
                              "clause; only filters (term, range, exists, ids) can be excluded on their own")
        parts = [f"+{a}" for a in flat.must] + [a for g in flat.groups for a in g] + flat.should + \
            [f"-{a}" for a in flat.must_not]
        if parts:
            out["q"] = " ".join(parts)
    if flat.fields and "q" in out:
        out["fields"] = flat.fields
    if flat.filters:
        out["filter"] = flat.filters[0] if len(flat.filters) == 1 else {"and": list(flat.filters)}
    return out


# ------------------------------------------------------------------ queries
def _translate(query: Any, view: IndexView, depth: int) -> Flat:
    if depth > MAX_DEPTH:
        raise unsupported(f"queries nested deeper than {MAX_DEPTH} levels")
    if not isinstance(query, dict) or len(query) != 1:
        raise parsing("a query is an object with exactly one query type, e.g. {\"match\": {...}}")
    (kind, body), = query.items()
    handler = _HANDLERS.get(kind)
    if handler is None:
        if kind in _KNOWN_UNSUPPORTED:
            raise unsupported(f"the [{kind}] query")
        raise parsing(f"unknown query [{kind}]")
    return handler(body, view, depth)


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


def _match(body: Any, view: IndexView, depth: int, phrase: bool = False) -> Flat:
    kind = "match_phrase" if phrase else "match"
    name, opts = _single_field(body, kind)
    if not isinstance(opts, dict):
        opts = {"query": opts}
    if "query" not in opts:
        raise parsing(f"[{kind}] query of field [{name}] needs a 'query'")
    if phrase:
        _options(opts, kind, {"query", "slop", "zero_terms_query", "analyzer"})
        if opts.get("slop", 0) != 0:
            raise unsupported("match_phrase with slop")
    else:
        _options(opts, kind, {"query", "operator", "minimum_should_match", "zero_terms_query", "analyzer",
                              "lenient", "fuzziness"}, {"auto_generate_synonyms_phrase_query", "fuzzy_transpositions",
                                                        "max_expansions", "prefix_length"})
    if opts.get("zero_terms_query", "none") != "none":
        raise unsupported("zero_terms_query other than none")
    if opts.get("analyzer") not in (None, "standard", "default"):
        raise unsupported(f"a search analyzer ({opts['analyzer']!r}) other than the field's own")
    operator = str(opts.get("operator", "or")).lower()
    if operator not in ("or", "and"):
        raise parsing(f"[{kind}] operator must be 'or' or 'and', not {opts.get('operator')!r}")
    operator = _apply_msm(opts.get("minimum_should_match"), operator, kind)
    query = opts["query"]
    ftype = view.types.get(name)
    if ftype == schema.KEYWORD:
        atom = _keyword_atom(name, query)
        return Flat(must=[atom]) if atom else Flat(filters=[{"term": {name: query}}])
    if ftype is not None:  # numbers, booleans, dates: an exact value
        return Flat(filters=[{"term": {name: query}}])
    if not view.is_text(name):
        return Flat(none=True)  # no document has this field
    words = _tokens(query, kind)
    if not words:
        return Flat(none=True)
    if phrase and len(words) > 1:
        return Flat(must=[f'{name}:"{" ".join(words)}"'])
    fuzzy = _fuzzy_suffix(opts.get("fuzziness"), kind)
    atoms = [f"{name}:{_fuzzy_word(w, fuzzy)}" for w in words]
    if operator == "and":
        return Flat(must=atoms)
    out = Flat()
    out.add_group(atoms)
    return out


def _fuzzy_suffix(fuzziness: Any, kind: str) -> str:
    """Elasticsearch's `fuzziness` as the query language's suffix: AUTO -> `~`, 1 -> `~1`."""
    if fuzziness is None:
        return ""
    text = str(fuzziness).strip().upper()
    if text == "AUTO":
        return "~"
    if text in ("0", "1", "2"):
        return "" if text == "0" else f"~{text}"
    raise parsing(f"[{kind}] fuzziness must be AUTO, 0, 1 or 2, not {fuzziness!r}")


def _fuzzy_word(word: str, suffix: str) -> str:
    return word + suffix if suffix and re.fullmatch(r"\w+", word) else word


def _apply_msm(msm: Any, operator: str, kind: str) -> str:
    if msm is None:
        return operator
    text = str(msm).strip()
    if text in ("1", "1%") or (operator == "or" and text in ("0", "0%")):
        return operator
    if text == "100%":
        return "and"
    raise unsupported(f"minimum_should_match {msm!r} on a [{kind}] query (only 1 or 100%)")


def _match_phrase(body, view, depth):
    return _match(body, view, depth, phrase=True)


def _multi_match(body: Any, view: IndexView, depth: int) -> Flat:
    opts = _obj(body, "multi_match")
    _options(opts, "multi_match", {"query", "fields", "type", "operator", "minimum_should_match",
                                   "zero_terms_query", "analyzer", "lenient", "fuzziness"},
             {"tie_breaker", "auto_generate_synonyms_phrase_query", "fuzzy_transpositions", "max_expansions",
              "prefix_length"})
    if "query" not in opts:
        raise parsing("[multi_match] needs a 'query'")
    fuzzy = _fuzzy_suffix(opts.get("fuzziness"), "multi_match")
    mtype = opts.get("type", "best_fields")
    if mtype not in ("best_fields", "most_fields", "phrase"):
        raise unsupported(f"multi_match of type {mtype!r} (best_fields, most_fields and phrase are supported)")
    operator = str(opts.get("operator", "or")).lower()
    if operator not in ("or", "and"):
        raise parsing(f"[multi_match] operator must be 'or' or 'and', not {opts.get('operator')!r}")
    operator = _apply_msm(opts.get("minimum_should_match"), operator, "multi_match")
    raw_fields = opts.get("fields")
    if raw_fields is None or raw_fields == [] or raw_fields == ["*"] or raw_fields == "*":
        spec = DEFAULT_FIELDS
    else:
        if isinstance(raw_fields, str):
            raw_fields = [raw_fields]
        if not isinstance(raw_fields, list):
            raise parsing("[multi_match] fields must be a list of field names")
        kept = []
        for item in raw_fields:
            name, _, boost = str(item).partition("^")
            _check_field_name(name, "multi_match")
            if name in view.types:
                raise unsupported(f"multi_match over the {view.types[name]} field {name!r} (text fields only; "
                                  f"use term or range for typed fields)")
            if boost:
                try:
                    float(boost)
                except ValueError:
                    raise parsing(f"[multi_match] bad boost in field {item!r}") from None
            if view.is_text(name):
                kept.append(f"{name}^{boost}" if boost else name)
        if not kept:
            return Flat(none=True)
        spec = ",".join(kept)
    words = _tokens(opts["query"], "multi_match")
    if not words:
        return Flat(none=True)
    if mtype == "phrase" and len(words) > 1:
        return Flat(must=[f'"{" ".join(words)}"'], fields=spec)
    words = [_fuzzy_word(w, fuzzy) for w in words]
    out = Flat(fields=spec)
    if operator == "and":
        out.must = list(words)
    else:
        out.add_group(list(words))
    return out


_QS_UNSUPPORTED = re.compile(r"(^|\s)(AND|OR|NOT)(\s|$)|&&|\|\||[()~^]|(^|\s)!")


def _query_string(body: Any, view: IndexView, depth: int, simple: bool = False) -> Flat:
    kind = "simple_query_string" if simple else "query_string"
    opts = _obj(body, kind)
    _options(opts, kind, {"query", "fields", "default_field", "default_operator", "lenient", "analyze_wildcard",
                          "flags", "analyzer"},
             {"auto_generate_synonyms_phrase_query", "fuzzy_transpositions", "quote_field_suffix",
              "minimum_should_match"})
    text = opts.get("query")
    if not isinstance(text, str):
        raise parsing(f"[{kind}] needs a 'query' string")
    if simple:
        text = re.sub(r"(^|\s)\|(\s|$)", " ", text)  # `|` is "or", raysearch's default
        text = re.sub(r"\s\+\s", " +", text)  # `a + b`: both required
    if _QS_UNSUPPORTED.search(text):
        raise unsupported(f"{kind} operators AND/OR/NOT, grouping with parentheses, fuzzy (~) and boosts (^) "
                          f"(raysearch reads +must -must_not \"phrases\" field:word prefix* field:[a TO b]; "
                          f"use a bool query to combine)")
    fields = opts.get("fields")
    if fields is None and opts.get("default_field") is not None:
        fields = [opts["default_field"]]
    if fields in (None, [], ["*"], "*"):
        spec = DEFAULT_FIELDS
    else:
        if not isinstance(fields, list):
            raise parsing(f"[{kind}] fields must be a list")
        for item in fields:
            _check_field_name(str(item).partition("^")[0], kind)
        spec = ",".join(str(f) for f in fields)
    operator = str(opts.get("default_operator", "or")).lower()
    if operator not in ("or", "and"):
        raise parsing(f"[{kind}] default_operator must be OR or AND")
    if not text.strip() or text.strip() == "*":
        return Flat()
    return Flat(raw=(text, spec, operator))


def _simple_query_string(body, view, depth):
    return _query_string(body, view, depth, simple=True)


def _term(body: Any, view: IndexView, depth: int) -> Flat:
    name, opts = _single_field(body, "term")
    if isinstance(opts, dict):
        _options(opts, "term", {"value", "case_insensitive"})
        if opts.get("case_insensitive"):
            raise unsupported("case_insensitive term queries")
        if "value" not in opts:
            raise parsing(f"[term] query of field [{name}] needs a 'value'")
        value = opts["value"]
    else:
        value = opts
    if isinstance(value, (list, dict)):
        raise parsing("[term] query takes one value; use [terms] for several")
    if name in view.types:
        return Flat(filters=[{"term": {name: value}}])
    if not view.is_text(name):
        return Flat(none=True)
    return Flat(must=[_text_term(name, value, view, "term")])


def _text_term(name: str, value: Any, view: IndexView, kind: str) -> str:
    """A term query on a text field: faithful only for a value that is already one indexed term."""
    if isinstance(value, str) and _WORD.fullmatch(value) and view.analyze(value) == [value]:
        return f"{name}:{value}"
    raise unsupported(f"a [{kind}] query on the text field {name!r} with {value!r}: only a single lowercase "
                      f"word that is its own analysed term can be matched exactly (use match)")


def _terms(body: Any, view: IndexView, depth: int) -> Flat:
    name, values = _single_field(body, "terms")
    if not isinstance(values, list):
        raise unsupported("terms lookup (terms queries take a list of values)")
    if name in view.types:
        return Flat(filters=[{"terms": {name: values}}])
    if not view.is_text(name) or not values:
        return Flat(none=True)
    out = Flat()
    out.add_group([_text_term(name, v, view, "terms") for v in values])
    return out


def _range(body: Any, view: IndexView, depth: int) -> Flat:
    name, opts = _single_field(body, "range")
    if not isinstance(opts, dict):
        raise parsing(f"[range] query of field [{name}] takes an object of bounds")
    bounds = {}
    for key, value in opts.items():
        if key in ("gt", "gte", "lt", "lte"):
            if value is not None:
                bounds[key] = value
        elif key in ("format", "relation") and (key != "relation" or str(value).upper() == "INTERSECTS"):
            continue  # dates: ISO 8601 or epoch millis are read as they come
        elif key in ("boost", "_name"):
            _options({key: value}, "range", set())
        elif key in ("from", "to", "include_lower", "include_upper"):
            raise unsupported(f"the legacy range option [{key}] (use gt/gte/lt/lte)")
        else:
            raise unsupported(f"the option [{key}] of the [range] query")
    if name not in view.types:
        if view.is_text(name):
            raise unsupported(f"a range over the text field {name!r} (declare it keyword, a number or a date)")
        return Flat(none=True)
    if not bounds:
        return Flat(filters=[{"exists": {"field": name}}])
    return Flat(filters=[{"range": {name: bounds}}])


def _exists(body: Any, view: IndexView, depth: int) -> Flat:
    opts = {k: v for k, v in _obj(body, "exists").items() if k not in ("boost", "_name")}
    if set(opts) != {"field"}:
        raise parsing("[exists] query takes {\"field\": name}")
    name = opts["field"]
    _check_field_name(name, "exists")
    if name in view.types:
        return Flat(filters=[{"exists": {"field": name}}])
    if view.is_text(name):
        raise unsupported(f"exists on the text field {name!r} (typed fields only)")
    return Flat(none=True)


def _ids(body: Any, view: IndexView, depth: int) -> Flat:
    opts = {k: v for k, v in _obj(body, "ids").items() if k not in ("boost", "_name")}
    values = opts.get("values")
    if set(opts) != {"values"} or not isinstance(values, list):
        raise parsing("[ids] query takes {\"values\": [ids]}")
    return Flat(filters=[{"ids": [str(v) for v in values]}])


def _match_all(body: Any, view: IndexView, depth: int) -> Flat:
    _options(_obj(body, "match_all"), "match_all", set())
    return Flat()


def _match_none(body: Any, view: IndexView, depth: int) -> Flat:
    return Flat(none=True)


def _constant_score(body: Any, view: IndexView, depth: int) -> Flat:
    opts = _obj(body, "constant_score")
    _options(opts, "constant_score", {"filter"})
    sub = _translate(opts.get("filter"), view, depth + 1)
    if sub.scoring():
        raise unsupported("scoring queries inside constant_score (filters only)")
    return sub


def _listify(value: Any, kind: str) -> list:
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return value
    raise parsing(f"[bool] {kind} must be a query or a list of queries")


def _bool(body: Any, view: IndexView, depth: int) -> Flat:
    opts = _obj(body, "bool")
    _options(opts, "bool", {"must", "should", "must_not", "filter", "minimum_should_match"},
             {"adjust_pure_negative"})
    must = _listify(opts.get("must"), "must")
    filt = _listify(opts.get("filter"), "filter")
    out = Flat()
    scorable = []  # keyword term filters under must: in Elasticsearch they score (an exact term)
    for q in must:
        sub = _translate(q, view, depth + 1)
        if sub.only_filters() and len(sub.filters) == 1 and not sub.none:
            try:
                atoms = _filter_atoms(sub.filters[0], view, optional=False)
                if len(atoms) == 1:
                    scorable.append((sub.filters[0], atoms[0]))
            except ElasticError:
                pass
        out.conj(sub)
    for q in filt:
        sub = _translate(q, view, depth + 1)
        if sub.scoring():
            raise unsupported("scoring queries (match, match_phrase, multi_match, query_string, term on a text "
                              "field) in a bool filter: raysearch filters only on typed fields; put them in must")
        out.conj(sub)
    for q in _listify(opts.get("must_not"), "must_not"):
        out.conj(_negate(_translate(q, view, depth + 1)))
    shoulds = [_translate(q, view, depth + 1) for q in _listify(opts.get("should"), "should")]
    if not shoulds:
        if "minimum_should_match" in opts and str(opts["minimum_should_match"]) not in ("0", "0%"):
            return Flat(none=True)  # more should clauses required than there are
        return out
    required = _should_required(opts.get("minimum_should_match"), len(shoulds), bool(must or filt))
    if required == "all":
        for sub in shoulds:
            out.conj(sub)
        return out
    live = [s for s in shoulds if not s.none]
    if required:
        if all(s.only_filters() for s in live):
            if all(s.filters for s in live) and live:
                out.filters.append({"or": [_and(s.filters) for s in live]})
            elif not live:
                out.none = True
            # else: one should matches everything -> no constraint
            return out
        atoms: list[str] = []
        for sub in live:
            atoms += _disjunct(sub, view, optional=False)
            out.fields = _same_fields(out.fields, sub.fields)
        out.add_group(atoms)
        return out
    for sub in live:
        if not (sub.scoring() or sub.filters or sub.must_not):
            continue  # match_all: the same constant for every document
        out.should += _disjunct(sub, view, optional=True)
        out.fields = _same_fields(out.fields, sub.fields)
    if out.should and not (out.must or out.groups) and scorable:
        # must: [term on a keyword] + optional should: the term is a required exact-term clause
        spec, atom = scorable[0]
        out.filters.remove(spec)
        out.must.append(atom)
    return out


def _and(filters: list):
    return filters[0] if len(filters) == 1 else {"and": list(filters)}


def _should_required(msm: Any, n: int, has_positive: bool):
    if msm is None:
        return not has_positive
    text = str(msm).strip()
    if text in ("0", "0%"):
        return False
    if text in ("1",) or (n == 1 and text in ("100%", "1")):
        return True
    if text == "100%" or text == str(n):
        return "all"
    raise unsupported(f"bool minimum_should_match {msm!r} (only 0, 1, 100% or the number of should clauses)")


def _disjunct(sub: Flat, view: IndexView, optional: bool) -> list[str]:
    """The clauses of one should alternative, when it is an `or` of single clauses."""
    if sub.raw is not None:
        raise unsupported("query_string/simple_query_string inside bool.should next to other clauses")
    if sub.must_not or (sub.filters and sub.scoring()):
        raise unsupported("a should clause that combines several conditions (a nested bool with must_not or "
                          "filters next to other should clauses)")
    if sub.filters:
        if len(sub.filters) != 1:
            raise unsupported("a should clause that is an `and` of several filters next to scoring should clauses")
        return _filter_atoms(sub.filters[0], view, optional)
    if len(sub.must) == 1 and not (sub.groups or sub.should):
        return list(sub.must)
    if len(sub.groups) == 1 and not (sub.must or sub.should):
        return list(sub.groups[0])
    if sub.should and not optional:
        raise unsupported("a should clause with optional should clauses of its own")
    raise unsupported("a should clause that requires several scoring parts (e.g. a match with operator 'and' "
                      "or a nested bool with must) next to other should clauses")


def _filter_atoms(spec: dict, view: IndexView, optional: bool) -> list[str]:
    """A term/terms filter on a keyword field as scoring clauses (exact terms score like
    Elasticsearch's term query does)."""
    (op, body), = spec.items()
    if op in ("term", "terms"):
        (name, value), = body.items()
        values = value if isinstance(value, list) else [value]
        if view.types.get(name) == schema.KEYWORD:
            atoms = [_keyword_atom(name, v) for v in values]
            if all(atoms) and atoms:
                return atoms
    raise unsupported(f"a {op} filter inside bool.should next to scoring queries (only term/terms on keyword "
                      f"fields can be combined with match clauses under should)")


def _negate(sub: Flat) -> Flat:
    if sub.none:
        return Flat()
    if sub.raw is not None:
        raise unsupported("query_string/simple_query_string under must_not")
    if not (sub.scoring() or sub.filters or sub.must_not):
        return Flat(none=True)  # not match_all
    if sub.only_filters():
        return Flat(filters=[{"not": _and(sub.filters)}])
    if not sub.filters and not sub.must_not and not sub.should:
        if len(sub.must) == 1 and not sub.groups:
            return Flat(must_not=list(sub.must), fields=sub.fields)
        if len(sub.groups) == 1 and not sub.must:
            return Flat(must_not=list(sub.groups[0]), fields=sub.fields)
    raise unsupported("must_not of a query that needs several scoring parts together (e.g. a match with "
                      "operator 'and', or a nested bool mixing text and filters)")


_HANDLERS: dict[str, Callable[[Any, IndexView, int], Flat]] = {
    "match": _match, "match_phrase": _match_phrase, "multi_match": _multi_match,
    "query_string": _query_string, "simple_query_string": _simple_query_string,
    "term": _term, "terms": _terms, "range": _range, "exists": _exists, "ids": _ids,
    "match_all": _match_all, "match_none": _match_none, "bool": _bool, "constant_score": _constant_score,
}
_KNOWN_UNSUPPORTED = {"match_phrase_prefix", "match_bool_prefix", "fuzzy", "prefix", "wildcard", "regexp",
                      "nested", "has_child", "has_parent", "function_score", "script_score", "dis_max",
                      "boosting", "more_like_this", "geo_distance", "geo_bounding_box", "script", "knn",
                      "combined_fields", "intervals", "span_term", "percolate", "wrapper", "pinned",
                      "distance_feature", "rank_feature", "terms_set", "semantic", "sparse_vector"}


# ------------------------------------------------------------------ sort, aggs
def translate_sort(spec: Any) -> list | None:
    if spec is None:
        return None
    items = spec if isinstance(spec, list) else [spec]
    out = []
    for item in items:
        if isinstance(item, str):
            name, _, order = item.partition(":")
            order = order or ("desc" if name == "_score" else "asc")
        elif isinstance(item, dict) and len(item) == 1:
            (name, opts), = item.items()
            if isinstance(opts, str):
                order = opts
            elif isinstance(opts, dict):
                order = opts.get("order", "desc" if name == "_score" else "asc")
                for key, value in opts.items():
                    if key in ("order", "unmapped_type", "format", "numeric_type"):
                        continue
                    if key == "missing" and value == "_last":
                        continue
                    if key == "mode" and value == ("max" if order == "desc" else "min"):
                        continue
                    raise unsupported(f"the sort option [{key}] = {value!r}")
            else:
                raise parsing(f"malformed sort for [{name}]")
        else:
            raise parsing("a sort is a field name, or {field: order}, or {field: {\"order\": ...}}")
        order = str(order).lower()
        if order not in ("asc", "desc"):
            raise parsing(f"sort order must be asc or desc, not {order!r}")
        if name == "_doc":
            raise unsupported("sorting by _doc (index order)")
        if name == "_score":
            if order != "desc":
                raise unsupported("sorting by _score ascending")
            out.append("_score")
        else:
            _check_field_name(name, "sort")
            out.append({name: order})
    return out


AGG_KINDS = ("terms", "stats", "histogram", "min", "max", "avg", "sum", "value_count")


def translate_aggs(spec: Any) -> tuple[dict, dict]:
    """aggs -> (raysearch facets, name -> (kind, options) to render the answer)."""
    if spec is None:
        return {}, {}
    if not isinstance(spec, dict):
        raise parsing("[aggs] must be an object: name -> {type: {...}}")
    facets, renderers = {}, {}
    for name, body in spec.items():
        if not isinstance(body, dict):
            raise parsing(f"aggregation [{name}] must be an object")
        body = {k: v for k, v in body.items() if k != "meta"}
        if "aggs" in body or "aggregations" in body:
            raise unsupported(f"sub-aggregations (in [{name}])")
        if len(body) != 1:
            raise parsing(f"aggregation [{name}] must have exactly one type")
        (kind, opts), = body.items()
        if kind not in AGG_KINDS:
            raise unsupported(f"the [{kind}] aggregation (terms, stats, histogram, min, max, avg, sum, "
                              f"value_count are supported)")
        if not isinstance(opts, dict) or not isinstance(opts.get("field"), str):
            raise parsing(f"aggregation [{name}] of type [{kind}] needs a 'field'")
        field = opts["field"]
        if kind == "terms":
            for key, value in opts.items():
                if key in ("field", "size", "shard_size", "show_term_doc_count_error"):
                    continue
                if key == "order" and value in ({"_count": "desc"}, [{"_count": "desc"}]):
                    continue
                if key == "min_doc_count" and value == 1:
                    continue
                raise unsupported(f"the option [{key}] of the terms aggregation")
            size = opts.get("size", 10)
            facets[name] = {"terms": {"field": field, "size": size}}
        elif kind == "histogram":
            for key, value in opts.items():
                if key in ("field", "interval"):
                    continue
                if key == "min_doc_count" and value == 0:
                    continue
                raise unsupported(f"the option [{key}] of the histogram aggregation")
            facets[name] = {"histogram": {"field": field, "interval": opts.get("interval")}}
        else:
            for key in opts:
                if key not in ("field",):
                    raise unsupported(f"the option [{key}] of the {kind} aggregation")
            facets[name] = {"stats": {"field": field}}
        renderers[name] = kind
    return facets, renderers
