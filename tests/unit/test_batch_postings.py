"""The whole-batch posting builder (index/batch_postings.py) against its specification,
`analyze_document`: for every shard the same documents, stored bytes, T entries,
(field, term) -> block bytes, typed values and per-field totals as a straightforward
per-document, per-token build."""

from __future__ import annotations

import gzip
import json
from array import array

import orjson

from hypothesis import given, settings, strategies as st

from raysearch import schema
from raysearch.analysis.analyzer import ALL_FIELD, Analyzer, AnalyzerSettings, analyze_document, iter_text_fields
from raysearch.index import keys as K
from raysearch.index.batch import encode_indexed, parse_indexed, split_batch
from raysearch.index.encoding import block_size, encode_block
from raysearch.index.routing import shard_for
from tests.conftest import CORPORA

TYPES = {"section": "keyword", "priority": "keyword", "size": "integer", "tags": "keyword"}


def reference_split(docs, shards, analyzer, types=None):
    """shard -> (doc ids, stored, T entries, {prefix: block}), one token at a time."""
    latest = {d["id"]: d for d in docs}
    out: dict[int, tuple] = {}
    for doc_id, doc in latest.items():
        fields = analyze_document(doc, analyzer, types)
        typed = schema.typed_values(doc, types) if types else {}
        n = shard_for(doc_id, shards)
        ids, stored, terms, cols, typed_of, totals = out.setdefault(n, ([], [], [], {}, [], {}))
        typed_of.append(typed)
        for f in fields:
            acc = totals.setdefault(f.name, [0, 0])
            acc[0] += 1
            acc[1] += f.length
        local = len(ids)
        ids.append(doc_id)
        stored.append(orjson.dumps(doc))
        terms.append(encode_indexed([[f.name, f.length, sorted(f.postings)] for f in fields], typed))
        for f in fields:
            for term, positions in f.postings.items():
                c = cols.setdefault(K.term_prefix(f.name, term), (array("I"), array("I"), array("I"), array("I")))
                c[0].append(local)
                c[1].append(len(positions))
                c[2].append(f.length)
                c[3].extend(positions)
    return {n: (ids, stored, terms, {p: encode_block(*c) for p, c in cols.items()}, typed_of, totals)
            for n, (ids, stored, terms, cols, typed_of, totals) in out.items()}


def _assert_same(docs, shards, analyzer, types=None):
    for derived_all in (False, True):
        _assert_same_mode(docs, shards, analyzer, types, derived_all)


def _assert_same_mode(docs, shards, analyzer, types, derived_all):
    """As the reference; with a derived `_all` (index/all_field.py), without `_all`'s blocks,
    with None for its terms in the T entries, and with its document frequencies and lengths
    equal to what the reference's `_all` blocks and lengths say."""
    got, _, failed = split_batch(docs, [], shards, analyzer, types, derived_all=derived_all)
    assert not failed
    want = reference_split(docs, shards, Analyzer(analyzer.settings), types)
    assert set(got) == set(want)
    text_fields = sorted({name for d in {d["id"]: d for d in docs}.values() for name, _ in iter_text_fields(d)
                          if (types or {}).get(name) is None})
    for n, (ids, stored, terms, blocks, typed, totals) in want.items():
        part = got[n]
        assert part.doc_ids == ids
        assert part.stored == stored
        assert len(part.block_prefixes) == len(set(part.block_prefixes))
        assert part.typed == typed
        assert part.field_totals == totals
        if not derived_all:
            assert part.terms == terms
            assert dict(zip(part.block_prefixes, part.blocks)) == blocks
            assert not part.all_terms and not part.text_fields
            continue
        all_prefix = K.POSTING + ALL_FIELD.encode() + K.SEP
        assert dict(zip(part.block_prefixes, part.blocks)) == {p: b for p, b in blocks.items()
                                                               if not p.startswith(all_prefix)}
        all_blocks = {p[len(all_prefix):-1].decode(): b for p, b in blocks.items() if p.startswith(all_prefix)}
        assert dict(zip(part.all_terms, part.all_counts)) == {t: block_size(b) for t, b in all_blocks.items()}
        entries = [parse_indexed(t)[0] for t in terms]
        assert [parse_indexed(t)[0] for t in part.terms] == [
            [[f, length, None if f == ALL_FIELD else ts] for f, length, ts in e] for e in entries]
        assert part.text_fields == (text_fields if part.all_lengths else [])
        assert part.all_lengths == ([next((length for f, length, _ in e if f == ALL_FIELD), 0) for e in entries]
                                    if text_fields else [])


def _debian(limit: int) -> list[dict]:
    with gzip.open(CORPORA / "debian-sample" / "docs.jsonl.gz", "rt") as f:
        return [json.loads(line) for _, line in zip(range(limit), f)]


def test_debian_batches_equal_the_per_document_build():
    docs = _debian(1500)
    analyzer = Analyzer()  # one long-lived analyzer over several batches, as in a worker
    for i in range(0, len(docs), 500):
        _assert_same(docs[i:i + 500], 3, analyzer)
    _assert_same(docs[:300], 2, analyzer, TYPES)


def test_fields_values_stopwords_and_keywords():
    docs = [
        {"id": "a", "title": "The Quick brown fox", "body": ["the the", "jumps over", "", "the lazy dog the"],
         "meta": {"author": "Émile Zola", "tags": ["x y", "z"]}},
        {"id": "b", "title": "the", "body": "of and to", "section": "games", "tags": ["a b", "a b", "c"]},
        {"id": "c", "size": 3, "section": "", "empty": []},
        {"id": "a", "title": "fox fox fox again", "section": "net"},  # last occurrence wins
        {"id": "d"},
    ]
    for shards in (1, 2, 5):
        _assert_same(docs, shards, Analyzer())
        _assert_same(docs, shards, Analyzer(), TYPES)
        _assert_same(docs, shards, Analyzer(AnalyzerSettings(stemming=None, stopwords=None)), TYPES)


def test_vocabulary_reset_between_batches_keeps_results():
    analyzer = Analyzer()
    docs = _debian(400)
    _assert_same(docs[:200], 2, analyzer)
    analyzer.start_batch(max_terms=10)  # renumbers everything
    assert analyzer.vocabulary == []
    _assert_same(docs[200:], 2, analyzer)


_words = st.sampled_from(["alpha", "beta", "the", "of", "Gamma", "delta", "running", "runs", "x", "Ωmega", "2024"])
_text = st.lists(_words, max_size=12).map(" ".join)
_value = st.one_of(_text, st.lists(_text, max_size=3))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.fixed_dictionaries({"id": st.sampled_from("abcdefgh")},
                                      optional={"title": _value, "body": _value, "section": _text,
                                                "tags": st.lists(_text, max_size=3)}), max_size=12),
       st.integers(1, 4), st.booleans())
def test_random_batches_equal_the_per_document_build(docs, shards, typed):
    _assert_same(docs, shards, Analyzer(), TYPES if typed else None)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.fixed_dictionaries({"id": st.sampled_from("abcdef")},
                                      optional={"title": st.text(max_size=30),
                                                "body": st.lists(st.text(alphabet="ab \x00é_.Ω-", max_size=12),
                                                                 max_size=4)}), max_size=8),
       st.integers(1, 3))
def test_any_text_equals_the_per_document_build(docs, shards):
    """The batch is tokenised as one text with NUL between values (Analyzer.batch_token_ids):
    values holding NUL themselves, empty values and values of only stop words or only
    separators still give each value the tokens it has alone."""
    _assert_same(docs, shards, Analyzer())


def test_analysis_failing_for_one_document_fails_it_alone():
    """The batch is analysed in one call; when that fails, each document alone, and only
    the one it fails for is left out (its neighbours keep their blocks and numbers)."""
    from tests.faults import _FailingAnalyzer

    docs = _debian(40)
    bad = dict(docs[7], title=docs[7]["title"] + " qqfailqq")
    real = Analyzer()
    got, indexed, failed = split_batch(docs[:7] + [bad] + docs[8:], [], 2, _FailingAnalyzer(real, "qqfailqq"))
    assert [f["id"] for f in failed] == [bad["id"]] and "injected fault" in failed[0]["reason"]
    assert indexed == len(docs) - 1
    want = split_batch(docs[:7] + docs[8:], [], 2, Analyzer())[0]
    for n, part in want.items():
        assert got[n].doc_ids == part.doc_ids and got[n].terms == part.terms
        assert dict(zip(got[n].block_prefixes, got[n].blocks)) == dict(zip(part.block_prefixes, part.blocks))
