#!/usr/bin/env python
"""Record the answers of a running raysearch service to the fixed set of searches in
tests/answer_set.py, into tests/data/answers/search-answers.json (or --out).

    python scripts/record_search_answers.py --url http://127.0.0.1:8000 [--label TEXT] [--out FILE]

Creates the index `recorded-answers` (2 shards, the typed fields), indexes the structured
corpus into it, waits until every document is persisted, asks every search; re-indexes
some documents and deletes others, asks every search again; and writes both sets of
answers with what was recorded (--label: say which commit served them). Only the HTTP
API is used, so an older version can be recorded as well as this one: that is how the
file checks that a change of code (the redesign of issue 21, say) changed no answer.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests import answer_set  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--label", default="", help="what served the answers (a commit)")
    p.add_argument("--out", default=str(answer_set.ANSWERS))
    args = p.parse_args(argv)
    with httpx.Client(base_url=args.url, timeout=120) as http:
        answer_set.load(http)
        fresh = answer_set.ask(http)
        answer_set.update(http)
        updated = answer_set.ask(http)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"recorded": args.label, "fresh": fresh, "updated": updated}) + "\n")
    print(f"{len(fresh)} + {len(updated)} answers into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
