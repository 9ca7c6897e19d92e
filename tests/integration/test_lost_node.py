"""A lost node: on a multi-node Ray cluster simulated on this machine (ray.cluster_utils),
the node holding a shard is removed during a bulk; the shard is re-created on a
surviving node, rebuilt from MongoDB plus the intake log, and every query answers
as the brute-force oracle does. Runs in a subprocess: it needs its own Ray cluster."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("lost_node_scenario.py")


@pytest.mark.slow
def test_shard_of_a_lost_node_is_rebuilt_elsewhere(mongo_server, corpora, tmp_path):
    out = subprocess.run(
        [sys.executable, str(SCRIPT), mongo_server.uri, str(tmp_path / "data"), str(corpora)],
        capture_output=True, text=True, timeout=900, cwd=str(SCRIPT.parents[2]),
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-3000:])
    findings = json.loads(lines[-1])
    assert findings["lost_shards"] and all(findings["restored"])
    assert findings["documents"] == findings["expected_documents"] and findings["verify_ok"]
