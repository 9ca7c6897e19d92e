"""From parsed clauses to a plan the shards execute, in two phases:

1. `analyze_clauses` -> which statistics are needed (`StatsRequest`), asked of every shard;
2. `build_plan` with the summed statistics -> weights (boost * idf) and avgdl,
   so every shard scores with GLOBAL statistics and results do not depend on
   the number of shards.

The plan is a `QueryPlan` (immutable, typed): the one form the coordinator builds, Ray
carries (pickled as plain tuples) and the executor reads, by name.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field as dc_field
from typing import Any, NamedTuple, Union

from raysearch import schema
from raysearch.analysis.analyzer import Analyzer, fold_ascii
from raysearch.errors import InvalidRequest
from raysearch.search import bm25
from raysearch.search import fuzzy
from raysearch.search.query import (AUTO, FUZZY, MUST, MUST_NOT, PHRASE, PREFIX, RANGE, SHOULD, TERM, Clause,
                                    range_bounds)


@dataclass
class AnalyzedClause:
    occur: str
    kind: str
    fields: list[tuple[str, float]]  # (field, boost)
    terms: list[str] = dc_field(default_factory=list)  # TERM: one; PHRASE: several
    offsets: list[int] = dc_field(default_factory=list)  # PHRASE: relative positions
    prefix: str = ""  # PREFIX
    filter: list | None = None  # RANGE: a filter node (filters.py) of a typed field
    edits: int = 0  # FUZZY: edits allowed (resolved from AUTO by the term's length)
    lenient: bool = False  # PREFIX of prefix_last: too many expansions keep the first ones, not a 400


@dataclass
class StatsRequest:
    fields: list[str]
    pairs: list[tuple[str, str]]  # (field, term)
    prefixes: list[tuple[str, str]]  # (field, prefix)
    fuzzy: list[tuple[str, str, int, int]] = dc_field(default_factory=list)  # (field, term, edits, limit)
    lenient: list[tuple[str, str]] = dc_field(default_factory=list)  # prefixes cut, not refused, past the bound


@dataclass
class GlobalStats:
    fields: dict[str, tuple[int, int]]  # field -> (docs having it, total length)
    doc_freqs: dict[tuple[str, str], int]
    expansions: dict[tuple[str, str], list[str]]
    # (field, term, edits) -> the closest terms as (term, distance), at most max_fuzzy_expansions
    fuzzy: dict[tuple[str, str, int], list[tuple[str, int]]] = dc_field(default_factory=dict)

    @staticmethod
    def merge(parts: list[dict], max_expansions: int, max_fuzzy: int = 50, lenient=()) -> "GlobalStats":
        fields: dict[str, list[int]] = {}
        doc_freqs: dict[tuple[str, str], int] = {}
        expansions: dict[tuple[str, str], set[str]] = {}
        for part in parts:
            for f, (docs, total) in part["fields"].items():
                acc = fields.setdefault(f, [0, 0])
                acc[0] += docs
                acc[1] += total
            for pair, df in zip(part["pairs"], part["doc_freqs"]):
                doc_freqs[tuple(pair)] = doc_freqs.get(tuple(pair), 0) + df
            for pair, terms in zip(part["prefixes"], part["expansions"]):
                expansions.setdefault(tuple(pair), set()).update(terms)
        merged_exp = {}
        for (f, prefix), terms in expansions.items():
            if len(terms) > max_expansions and (f, prefix) in lenient:
                # the first terms in order on every shard: the union's first are the index's first
                terms = set(sorted(terms)[:max_expansions])
            elif len(terms) > max_expansions:
                raise InvalidRequest(
                    f"prefix '{prefix}*' matches more than {max_expansions} terms in field '{f}'; use a longer prefix"
                )
            merged_exp[(f, prefix)] = sorted(terms)
        fuzzy_parts: dict[tuple[str, str, int], list] = {}
        for part in parts:
            for (f, t, e, _), found in zip(part.get("fuzzy", ()), part.get("fuzzy_candidates", ())):
                fuzzy_parts.setdefault((f, t, e), []).append(found)
        merged_fuzzy = {key: fuzzy.merge(found, max_fuzzy) for key, found in fuzzy_parts.items()}
        return GlobalStats({f: (v[0], v[1]) for f, v in fields.items()}, doc_freqs, merged_exp, merged_fuzzy)


# The plan's types are NamedTuples: immutable and read by name like dataclasses, and
# pickled as plain tuples -- a plan crosses Ray to every shard of every search, and frozen
# dataclasses cost ~6x as much to pickle and unpickle (44 against 7 us for a 3-term plan).
class TermPart(NamedTuple):
    """One field's terms of a TERM or PREFIX clause (a prefix expands to several), each
    with its weight (boost * idf)."""

    field: str
    terms: tuple[tuple[str, float], ...]
    boost: float = 1.0
    idfs: tuple[float, ...] = ()  # per term (explain)


class PhrasePart(NamedTuple):
    """A phrase in one field: its terms at relative `offsets`; weight is boost * the sum of
    its terms' idf, as in Lucene."""

    field: str
    terms: tuple[str, ...]
    offsets: tuple[int, ...]
    weight: float
    boost: float = 1.0


Part = Union[TermPart, PhrasePart]


class PlanClause(NamedTuple):
    occur: str  # query.MUST, SHOULD or MUST_NOT
    kind: str  # query.TERM, PREFIX, PHRASE or RANGE
    parts: tuple = ()  # of Part
    filter: list | None = None  # RANGE: a filter node (filters.py) of a typed field

    @property
    def single_term(self) -> bool:
        """One term in one field: scored straight into the query's score array."""
        return (self.kind not in (PHRASE, RANGE) and len(self.parts) == 1
                and len(self.parts[0].terms) == 1)


class QueryPlan(NamedTuple):
    """What every shard executes for one search (search/executor.py). Never mutated (the
    empty defaults are shared)."""

    clauses: tuple = ()  # of PlanClause
    avgdl: dict = {}  # field -> mean length, global
    match_all: bool = False  # no clauses: every live document, score 1
    filter: list | None = None  # filters.parse_filter: masks, never scores
    sort: list = []  # sorting.parse_sort: [[field, order], ...]; [] = by score
    facets: dict = {}  # facets.parse_facets
    search_after: Any = None  # sorting.parse_after: (values, id) or None
    # per shard, the statistics version the weights were computed from (one-round search from
    # the coordinator's cache; a shard at another version answers `stale`); None: a fresh round
    versions: list | None = None
    fetch: bool = False  # a first page: the hits' stored documents come back with the query phase
    explain: bool = False  # each hit's score, clause by clause (search/explain.py)
    # hybrid and kNN searches: the kNN hits' ids, counted into total and facets (the union of
    # both lists) though only the text matches are ranked; match_none: no text part at all
    also: tuple = ()
    match_none: bool = False


def analyze_clauses(
    clauses: list[Clause], analyzer: Analyzer, default_fields: list[tuple[str, float]], operator: str = "or",
    types: dict[str, str] | None = None, typo_tolerance: bool = False, prefix_last: bool = False,
) -> list[AnalyzedClause]:
    """`types` are the index's typed fields: `field:value` on a keyword is its exact term,
    on a number, boolean or date an exact match, and `field:[a TO b]` a range; a value
    that does not fit the type is read as plain words (lenient, like the rest).
    `typo_tolerance` reads every plain word of a text field as `word~` (AUTO edits);
    `prefix_last` reads the query's last word as a prefix (search as you type)."""
    types = types or {}
    out: list[AnalyzedClause] = []
    if prefix_last and clauses and clauses[-1].kind == TERM and clauses[-1].occur != MUST_NOT \
            and (clauses[-1].field is None or types.get(clauses[-1].field, schema.TEXT) == schema.TEXT) \
            and re.fullmatch(r"\w+", clauses[-1].text):
        last = clauses[-1]
        clauses = [*clauses[:-1], Clause(last.occur, PREFIX, last.text, last.field, lenient=True)]
    for clause in clauses:
        occur = MUST if (operator == "and" and clause.occur == SHOULD) else clause.occur
        fields = [(clause.field, _boost_of(clause.field, default_fields))] if clause.field else default_fields
        ftype = types.get(clause.field) if clause.field else None
        if ftype is not None and ftype != schema.TEXT:
            typed = _typed_clause(clause, occur, ftype, fields)
            if typed is not None:
                out.append(typed)
                continue
            clause, fields = Clause(clause.occur, TERM, clause.text), default_fields  # plain words
        elif clause.kind == RANGE:
            clause = Clause(clause.occur, TERM, clause.text, clause.field)
        if clause.kind == PREFIX:
            prefix = fold_ascii(clause.text.lower()) if analyzer.settings.ascii_folding else clause.text.lower()
            if clause.lenient:
                # a word typed in full must still match its stem ("library" is stored as "librari"):
                # the prefix both share
                terms = analyzer.terms(clause.text)
                if len(terms) == 1:
                    prefix = os.path.commonprefix([prefix, terms[0]]) or prefix
            out.append(AnalyzedClause(occur, PREFIX, fields, prefix=prefix, lenient=clause.lenient))
            continue
        tokens = list(analyzer.tokens(clause.text))
        if not tokens:
            continue  # only stop words / punctuation
        if clause.kind == FUZZY or (typo_tolerance and clause.kind == TERM):
            for token, _ in tokens:
                edits = fuzzy.resolve(token, AUTO if clause.edits is None else clause.edits)
                out.append(AnalyzedClause(occur, FUZZY if edits else TERM, fields, [token], edits=edits))
            continue
        if clause.kind == PHRASE and len(tokens) > 1:
            first = tokens[0][1]
            out.append(
                AnalyzedClause(occur, PHRASE, fields, [t for t, _ in tokens], [p - first for _, p in tokens])
            )
        else:
            out.extend(AnalyzedClause(occur, TERM, fields, [t]) for t, _ in tokens)
    return out


def _typed_clause(clause: Clause, occur: str, ftype: str, fields) -> AnalyzedClause | None:
    field = clause.field
    if ftype == schema.KEYWORD and clause.kind == FUZZY:
        edits = fuzzy.resolve(clause.text, clause.edits)
        return AnalyzedClause(occur, FUZZY if edits else TERM, fields, [clause.text], edits=edits)
    if ftype == schema.KEYWORD and clause.kind in (TERM, PHRASE):
        return AnalyzedClause(occur, TERM, fields, [clause.text])
    if ftype == schema.KEYWORD and clause.kind == PREFIX:
        return AnalyzedClause(occur, PREFIX, fields, prefix=clause.text)
    try:
        if clause.kind == RANGE:
            bounds = range_bounds(clause.text)
            if bounds is None:
                return None
            node = ["range", field, [[op, coerce_text(field, ftype, v)] for op, v in bounds]]
        elif clause.kind == TERM:
            node = ["term", field, [coerce_text(field, ftype, clause.text)]]
        else:
            return None
    except ValueError:
        return None
    return AnalyzedClause(occur, RANGE, fields, filter=node)


def coerce_text(field: str, ftype: str, text: str):
    """A value written in a query string, read as the field's type (ValueError if it is not)."""
    if ftype == schema.KEYWORD:
        return schema.normalize(field, ftype, text)
    if ftype == schema.BOOLEAN:
        if text.lower() not in ("true", "false"):
            raise ValueError(text)
        return int(text.lower() == "true")
    if ftype == schema.DATE:
        return schema.parse_date(field, int(text) if text.lstrip("-").isdigit() else text)
    if ftype == schema.INTEGER:
        return schema.normalize(field, ftype, int(text) if text.lstrip("-").isdigit() else float(text))
    return schema.normalize(field, ftype, float(text))


def _boost_of(field: str, default_fields: list[tuple[str, float]]) -> float:
    return next((b for f, b in default_fields if f == field), 1.0)


def stats_request(aclauses: list[AnalyzedClause], max_fuzzy: int = 50) -> StatsRequest:
    fields, pairs, prefixes, fuzzy_terms, lenient = {}, {}, {}, {}, {}
    for c in aclauses:
        for f, _ in c.fields:
            fields[f] = None
            if c.kind == FUZZY:
                fuzzy_terms[(f, c.terms[0], c.edits, max_fuzzy)] = None
                continue
            for t in c.terms:
                pairs[(f, t)] = None
            if c.kind == PREFIX:
                prefixes[(f, c.prefix)] = None
                if c.lenient:
                    lenient[(f, c.prefix)] = None
    return StatsRequest(list(fields), list(pairs), list(prefixes), list(fuzzy_terms), list(lenient))


def build_plan(aclauses: list[AnalyzedClause], stats: GlobalStats, prefix_doc_freqs: dict | None = None,
               **options) -> QueryPlan:
    """The executable plan: the clauses with their weights (boost * idf from the global
    statistics) and each field's global avgdl; `options` are QueryPlan's other fields."""
    prefix_doc_freqs = prefix_doc_freqs or {}
    avgdl = {f: (total / docs if docs else 1.0) for f, (docs, total) in stats.fields.items()}
    clauses = []
    for c in aclauses:
        if c.kind == RANGE:
            clauses.append(PlanClause(c.occur, RANGE, (), c.filter))
            continue
        parts: list[Part] = []
        for f, boost in c.fields:
            n_docs = stats.fields.get(f, (0, 0))[0]
            if n_docs == 0:
                continue
            if c.kind == TERM:
                df = stats.doc_freqs.get((f, c.terms[0]), 0)
                if df:
                    idf = bm25.idf(n_docs, df)
                    parts.append(TermPart(f, ((c.terms[0], boost * idf),), boost, (idf,)))
            elif c.kind == FUZZY:
                # Lucene's fuzzy scoring: one idf for every candidate (of the largest df among
                # them), times its similarity -- an exact match ranks above its misspellings
                found = [(t, d, prefix_doc_freqs.get((f, t), 0)) for t, d in stats.fuzzy.get((f, c.terms[0], c.edits), [])]
                found = [x for x in found if x[2]]
                if found:
                    idf = bm25.idf(n_docs, max(df for _, _, df in found))
                    terms = tuple((t, boost * idf * fuzzy.similarity(c.terms[0], t, d)) for t, d, _ in found)
                    parts.append(TermPart(f, terms, boost, (idf,) * len(terms)))
            elif c.kind == PREFIX:
                terms, idfs = [], []
                for t in stats.expansions.get((f, c.prefix), []):
                    df = prefix_doc_freqs.get((f, t), 0)
                    if df:
                        idf = bm25.idf(n_docs, df)
                        terms.append((t, boost * idf))
                        idfs.append(idf)
                if terms:
                    parts.append(TermPart(f, tuple(terms), boost, tuple(idfs)))
            else:  # PHRASE: weight is the sum of its terms' idf, as in Lucene
                dfs = [stats.doc_freqs.get((f, t), 0) for t in c.terms]
                if all(dfs):
                    weight = boost * sum(bm25.idf(n_docs, df) for df in dfs)
                    parts.append(PhrasePart(f, tuple(c.terms), tuple(c.offsets), weight, boost))
        if not parts and c.occur == MUST_NOT:
            continue  # excludes nothing
        clauses.append(PlanClause(c.occur, c.kind, tuple(parts)))
    return QueryPlan(clauses=tuple(clauses), avgdl=avgdl, **options)


def prefix_pairs(stats: GlobalStats) -> list[tuple[str, str]]:
    """(field, expanded term) pairs whose doc freqs a second stats round must fetch (prefix
    expansions and fuzzy candidates)."""
    pairs = {(f, t): None for (f, _), terms in stats.expansions.items() for t in terms}
    for (f, _, _), found in stats.fuzzy.items():
        for t, _ in found:
            pairs[(f, t)] = None
    return list(pairs)
