"""The benchmark harness keeps working: `benchmarks/run.py --smoke` end to end.

It runs as a subprocess with its own local service (MongoDB server, Ray
cluster, Serve on a free port), beside the test suite's session service: two
local Ray clusters in two processes on one machine do not collide
(`ray.init(address="local")` starts a new one on free ports).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _numbers(value, path=""):
    """(path, number) for every number in a JSON value."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _numbers(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _numbers(v, f"{path}[{i}]")


@pytest.mark.timeout(900)
def test_benchmark_smoke_measures_everything(tmp_path, corpora):
    out = tmp_path / "results"
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--smoke", "--out", str(out),
         "--corpus", str(corpora / "debian-sample" / "docs.jsonl.gz")],  # the repo's sample: no network
        cwd=REPO, env=env, capture_output=True, text=True, timeout=840,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    report = json.loads((out / "benchmark.json").read_text())
    assert (out / "benchmark.md").read_text().startswith("# raysearch benchmark")
    r = report["results"]

    # Bulk: two sizes, each completed, every document searchable and persisted.
    assert [m["documents"] for m in r["bulk"]] == [500, 1500]
    for m in r["bulk"]:
        assert m["status"] == "completed" and m["rejected"] == 0, m
        assert 0 < m["searchable_s"] <= m["completed_s"], m
        assert m["searchable_docs_per_s"] > 0 and m["completed_docs_per_s"] > 0
        assert m["memory"]["peak_rss_mb"] > 0 and m["memory"]["cpu_s_total"] > 0
        assert m["memory"]["peak_processes"] > 5  # driver, raylet, gcs, MongoDB server, actors
        roles = m["memory"]["peak_rss_mb_by_role"]
        assert "secantusd" in roles and any("ShardStore" in k for k in roles), roles

    # Search: every path measured on the 50 queries.
    assert r["queries"]["count"] == 50
    for path in ("http_after_bulk", "http", "api"):  # right after the bulk, then settled
        assert r["search"][path]["queries"] == 50
    assert r["search"]["http_concurrent"]["queries"] == 50 and r["search"]["http_concurrent"]["threads"] == 8
    assert set(r["search"]["structured"]) >= {"unfiltered", "filtered", "sorted_by_field", "faceted"}
    assert all(x["queries"] == 50 for x in r["search"]["structured"].values())

    # Baselines: both engines built and queried, and rank much like raysearch (same analysis, BM25).
    for name in ("tantivy", "sqlite_fts5"):
        b = r["baselines"][name]
        assert b["latency"]["queries"] == 50
        assert b["top10_overlap_with_raysearch"] > 0.5, b
    assert set(r["ratios"]) == {"tantivy", "sqlite_fts5"}

    # Every figure is positive (only the count of rejected documents may be 0).
    figures = [(p, v) for p, v in _numbers(r) if not p.endswith(".rejected")]
    assert len(figures) > 60
    bad = [(p, v) for p, v in figures if not v > 0]
    assert not bad, bad
