"""Leaf queries: the Elasticsearch queries that hold no other query (pure; never imports Ray).

Each handler takes (body, view, depth) and returns a `Flat`:

- scoring text queries: `match`, `match_phrase`, `multi_match`, `query_string`,
  `simple_query_string` become clauses of raysearch's `q`;
- `term`, `terms` (clauses on a text field, filters on a typed one), `range`, `exists`,
  `ids` become filters;
- `match_all`, `match_none`.

They are dispatched by `dsl_compound._translate` (its `_HANDLERS` table).
"""

from __future__ import annotations

import re
from typing import Any

from raysearch import schema
from raysearch.elastic.dsl_base import (
    _WORD,
    DEFAULT_FIELDS,
    Flat,
    IndexView,
    _check_field_name,
    _keyword_atom,
    _obj,
    _options,
    _single_field,
    _tokens,
)
from raysearch.elastic.errors import parsing, unsupported


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
