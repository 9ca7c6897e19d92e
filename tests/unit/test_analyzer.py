from raysearch.analysis.analyzer import ALL_FIELD, Analyzer, AnalyzerSettings, analyze_document


def test_unicode_words_lowercased_without_stemming(no_ray):
    a = Analyzer(AnalyzerSettings(stemming=None, stopwords=None, ascii_folding=False))
    assert a.terms("Hello, Wörld! naïve_test 42") == ["hello", "wörld", "naïve_test", "42"]


def test_folding_stopwords_and_stemming(no_ray):
    a = Analyzer()
    assert a.terms("The Café is running") == ["cafe", "run"]


def test_positions_count_removed_stop_words(no_ray):
    assert list(Analyzer().tokens("lack of memory")) == [("lack", 0), ("memori", 2)]


def test_every_string_field_and_all(no_ray):
    doc = {"id": "x", "title": "Fast search", "body": "search engines", "n": 3, "tags": ["ray", "db"],
           "meta": {"lang": "python"}}
    fields = {f.name: f for f in analyze_document(doc, Analyzer(AnalyzerSettings(stemming=None)))}
    assert set(fields) == {"title", "body", "tags", "meta.lang", ALL_FIELD}
    assert fields[ALL_FIELD].postings["search"][0] == 1
    assert len(fields[ALL_FIELD].postings["search"]) == 2
    assert fields[ALL_FIELD].length == 7
    # values never run together into one phrase
    assert fields["tags"].postings["db"][0] - fields["tags"].postings["ray"][0] > 1
