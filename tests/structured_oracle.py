"""Brute-force oracle for structured search, written apart from the engine's code:
it walks every document for every request (filters, sort with ties by id, cursors,
facets), in plain Python over the documents' own JSON values."""

from __future__ import annotations

import math
from datetime import datetime, timezone


def _date_ms(value) -> int:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(round(parsed.timestamp() * 1000))


class StructuredOracle:
    def __init__(self, docs: list[dict], types: dict[str, str]):
        self.docs = {d["id"]: d for d in docs}
        self.types = types

    def values(self, doc: dict, field: str) -> list:
        raw = doc.get(field)
        if raw is None:
            return []
        items = raw if isinstance(raw, list) else [raw]
        ftype = self.types[field]
        out = set()
        for item in items:
            if item is None:
                continue
            if ftype == "date":
                out.add(_date_ms(item))
            elif ftype == "boolean":
                out.add(bool(item))
            elif ftype == "float":
                out.add(float(item))
            else:
                out.add(item)
        return sorted(out)

    def _value(self, field: str, v):
        return _date_ms(v) if self.types[field] == "date" else v

    def matches(self, f, doc: dict) -> bool:
        if f is None:
            return True
        if isinstance(f, list):
            return all(self.matches(x, doc) for x in f)
        (op, body), = f.items()
        if op == "and":
            return all(self.matches(x, doc) for x in body)
        if op == "or":
            return any(self.matches(x, doc) for x in body)
        if op == "not":
            return not self.matches(body, doc)
        if op == "exists":
            return bool(self.values(doc, body["field"]))
        (field, arg), = body.items()
        vals = self.values(doc, field)
        if op == "term":
            return self._value(field, arg) in vals
        if op == "terms":
            wanted = {self._value(field, a) for a in arg}
            return any(v in wanted for v in vals)
        if op == "range":
            def ok(v):
                for bop, bound in arg.items():
                    bound = self._value(field, bound)
                    if (bop == "gt" and not v > bound) or (bop == "gte" and not v >= bound) or \
                            (bop == "lt" and not v < bound) or (bop == "lte" and not v <= bound):
                        return False
                return True
            return any(ok(v) for v in vals)
        raise AssertionError(op)

    def select(self, flt, scores: dict[str, float] | None = None) -> list[str]:
        """Ids that match (the query, if scores are given, and) the filter."""
        ids = self.docs if scores is None else scores
        return [d for d in ids if self.matches(flt, self.docs[d])]

    def ordered(self, ids: list[str], sort: list, scores: dict[str, float] | None = None) -> list[tuple]:
        """(id, sort values) best first: keys in order, missing values last, ties by id."""
        specs = []
        for item in sort:
            (field, order), = item.items() if isinstance(item, dict) else [(item, "desc" if item == "_score" else "asc")]
            specs.append((field, order))

        def value(doc_id, field, order):
            if field == "_score":
                return (scores or {}).get(doc_id, 1.0)
            vals = self.values(self.docs[doc_id], field)
            if not vals:
                return None
            return vals[-1] if order == "desc" else vals[0]

        rows = [(doc_id, [value(doc_id, f, o) for f, o in specs]) for doc_id in ids]

        class Key:
            def __init__(self, row):
                self.row = row

            def __lt__(self, other):
                for (f, o), a, b in zip(specs, self.row[1], other.row[1]):
                    if a == b:
                        continue
                    if a is None:
                        return False
                    if b is None:
                        return True
                    return a > b if o == "desc" else a < b
                return self.row[0] < other.row[0]

        return sorted(rows, key=Key)

    def facets(self, ids: list[str], specs: dict) -> dict:
        out = {}
        for name, spec in specs.items():
            (kind, args), = spec.items()
            field = args["field"]
            per_doc = [self.values(self.docs[d], field) for d in ids]
            if kind == "terms":
                counts = {}
                for vals in per_doc:
                    for v in vals:
                        counts[v] = counts.get(v, 0) + 1
                ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
                size = args.get("size", 10)
                out[name] = {"buckets": [{"key": k, "count": c} for k, c in ordered[:size]],
                             "other": sum(c for _, c in ordered[size:])}
            elif kind == "stats":
                flat = [float(v) for vals in per_doc for v in vals]
                out[name] = {"count": len(flat), "min": min(flat) if flat else None,
                             "max": max(flat) if flat else None, "sum": sum(flat),
                             "avg": sum(flat) / len(flat) if flat else None}
            else:
                interval = args["interval"]
                counts = {}
                for vals in per_doc:
                    for b in {math.floor(v / interval) for v in vals}:
                        counts[b] = counts.get(b, 0) + 1
                if counts:
                    out[name] = {"buckets": [{"key": b * interval, "count": counts.get(b, 0)}
                                             for b in range(min(counts), max(counts) + 1)]}
                else:
                    out[name] = {"buckets": []}
        return out
