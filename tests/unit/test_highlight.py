from raysearch.analysis.analyzer import ALL_FIELD, Analyzer, AnalyzerSettings
from raysearch.search.highlight import highlight
from raysearch.search.plan import AnalyzedClause, analyze_clauses
from raysearch.search.query import MUST_NOT, PREFIX, SHOULD, TERM, parse_query

FIELDS = {"title", "body", "tags", "meta.lang"}


def clauses(q: str, analyzer: Analyzer, default=((ALL_FIELD, 1.0),)):
    return analyze_clauses(parse_query(q, lambda f: f in FIELDS), analyzer, list(default))


def test_stemmed_matches_are_wrapped_and_only_matching_fields_appear(no_ray):
    a = Analyzer()
    doc = {"id": "1", "title": "Running fast", "body": "Nothing to see here", "n": 3}
    out = highlight(doc, clauses("runs", a), a)
    assert out == {"title": ["<em>Running</em> fast"]}


def test_stop_words_are_not_highlighted_and_case_is_kept(no_ray):
    a = Analyzer()
    doc = {"id": "1", "body": "The Café and the cafes"}
    out = highlight(doc, clauses("the cafe", a), a)
    assert out == {"body": ["The <em>Café</em> and the <em>cafes</em>"]}


def test_must_not_is_ignored_and_no_positive_clause_means_no_highlight(no_ray):
    a = Analyzer()
    doc = {"id": "1", "body": "apples and pears"}
    assert highlight(doc, clauses("pears -apples", a), a) == {"body": ["apples and <em>pears</em>"]}
    assert highlight(doc, clauses("-apples", a), a) == {}
    assert highlight(doc, [AnalyzedClause(MUST_NOT, TERM, [(ALL_FIELD, 1.0)], ["appl"])], a) == {}


def test_prefix_and_field_restriction(no_ray):
    a = Analyzer(AnalyzerSettings(stemming=None))
    doc = {"id": "1", "title": "search engines", "body": "a search for searchers"}
    out = highlight(doc, [AnalyzedClause(SHOULD, PREFIX, [("body", 1.0)], prefix="search")], a)
    assert out == {"body": ["a <em>search</em> for <em>searchers</em>"]}
    out = highlight(doc, clauses("title:search", a), a)
    assert out == {"title": ["<em>search</em> engines"]}


def test_nested_and_list_fields(no_ray):
    a = Analyzer()
    doc = {"id": "python", "tags": ["ray", "python tools"], "meta": {"lang": "Python"}}
    out = highlight(doc, clauses("python", a), a)
    assert out == {"tags": ["<em>python</em> tools"], "meta.lang": ["<em>Python</em>"]}


def test_long_text_gives_at_most_three_short_snippets_in_document_order(no_ray):
    a = Analyzer()
    filler = " ".join(["lorem ipsum dolor sit amet"] * 12)  # ~320 chars without a match
    body = f"alpha {filler} beta {filler} alpha gamma {filler} beta {filler} gamma end"
    out = highlight({"id": "1", "body": body}, clauses("alpha beta gamma", a), a)
    snippets = out["body"]
    assert len(snippets) == 3
    for s in snippets:
        plain = s.replace("<em>", "").replace("</em>", "")
        assert len(plain) <= 160, plain
        assert plain in body  # a contiguous piece of the text, words not cut
        assert "<em>" in s
    # the window holding two distinct terms ("alpha gamma") is chosen
    assert any("<em>alpha</em> <em>gamma</em>" in s for s in snippets)
    # document order
    positions = [body.index(s.replace("<em>", "").replace("</em>", "")) for s in snippets]
    assert positions == sorted(positions)


def test_words_are_not_cut_at_snippet_edges(no_ray):
    a = Analyzer()
    words = [f"word{i:03d}" for i in range(100)]
    words[50] = "target"
    body = " ".join(words)
    (snippet,) = highlight({"id": "1", "body": body}, clauses("target", a), a)["body"]
    plain = snippet.replace("<em>", "").replace("</em>", "")
    assert "<em>target</em>" in snippet
    for w in plain.split():
        assert w in words, w
