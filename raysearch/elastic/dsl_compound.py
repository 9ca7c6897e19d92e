"""Query dispatch and the compound queries (pure; never imports Ray).

- `_translate`: one Elasticsearch query -> a `Flat`, through the `_HANDLERS` table
  (leaf queries from `dsl_leaf`, plus the compound ones here), refusing unknown and
  known-unsupported query types and nesting deeper than `MAX_DEPTH`;
- `constant_score` and `bool`, which hold other queries and recurse through
  `_translate`, with the helpers that fold their clauses into one `Flat`
  (`_should_required`, `_disjunct`, `_filter_atoms`, `_negate`).

The dispatch lives here, next to the queries that recurse into it, so that no module
imports one that imports it back.
"""

from __future__ import annotations

from typing import Any, Callable

from raysearch import schema
from raysearch.elastic.dsl_base import (
    MAX_DEPTH,
    Flat,
    IndexView,
    _keyword_atom,
    _obj,
    _options,
    _same_fields,
)
from raysearch.elastic.dsl_leaf import (
    _exists,
    _ids,
    _match,
    _match_all,
    _match_none,
    _match_phrase,
    _multi_match,
    _query_string,
    _range,
    _simple_query_string,
    _term,
    _terms,
)
from raysearch.elastic.errors import ElasticError, parsing, unsupported


# ------------------------------------------------------------------ dispatch
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


# ------------------------------------------------------------------ compound queries
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
