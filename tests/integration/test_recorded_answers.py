"""The same searches answer the same across versions: ids, totals, scores, sort values and
facets of a fixed set of searches on the structured corpus (tests/answer_set.py), on the
fresh index and again after documents were re-indexed and deleted, against the answers
recorded in tests/data/answers/search-answers.json. The recording was made by the code
from before the redesign of the search path (issue 21: the coordinator, the typed plan,
one BM25), which also removed a re-indexed document's postings at once where the code now
marks it dead (issue 25), served over HTTP (scripts/record_search_answers.py; its
"recorded" field names the commit). So this test shows that those changes changed no
answer, and catches any later change that does. A deliberate change of ranking records
the file again and says so in its commit.

The recording was made with `_all` stored (a copy of every text posting); indexes now derive
it from the text fields' postings (index/all_field.py) by default, and an index that keeps
it stored (`"all_field": "indexed"`, what every index made before reads as) answers the same."""

from __future__ import annotations

import json

from tests import answer_set


def test_searches_answer_as_recorded_fresh_and_after_updates(http):
    recorded = json.loads(answer_set.ANSWERS.read_text())
    bodies = answer_set.searches(answer_set.documents())
    answer_set.load(http)
    fresh = answer_set.ask(http)
    answer_set.update(http)
    updated = answer_set.ask(http)
    assert len(recorded["fresh"]) == len(recorded["updated"]) == len(bodies) > 100
    # the set asks something, and the updates change some answers
    assert sum(len(a["hits"]) for a in fresh) > 500 and any(a.get("facets") for a in fresh)
    assert fresh != updated
    assert answer_set.differences(recorded["fresh"], fresh, bodies) == []
    assert answer_set.differences(recorded["updated"], updated, bodies) == []
    http.delete(f"/indexes/{answer_set.INDEX}")


def test_an_index_with_stored_all_answers_as_recorded(http):
    recorded = json.loads(answer_set.ANSWERS.read_text())
    bodies = answer_set.searches(answer_set.documents())
    index = "recorded-answers-stored-all"
    answer_set.load(http, index, {"all_field": "indexed"})
    assert http.get(f"/indexes/{index}").json()["settings"]["all_field"] == "indexed"
    assert answer_set.differences(recorded["fresh"], answer_set.ask(http, index), bodies) == []
    answer_set.update(http, index)
    assert answer_set.differences(recorded["updated"], answer_set.ask(http, index), bodies) == []
    http.delete(f"/indexes/{index}")
