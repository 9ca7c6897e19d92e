"""The `raysearch` command line against the suite's service: exit codes scripts rely on."""

from __future__ import annotations

import json
import subprocess
import sys


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "raysearch.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_bulk_search_status_and_exit_codes(service, tmp_path):
    data = tmp_path / "docs.jsonl"
    data.write_text("\n".join(json.dumps({"id": f"c{i}", "title": f"command line document {i}"})
                              for i in range(40)))
    out = _cli("bulk", str(data), "--index", "cli-docs", "--url", service.url, "--quiet")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "completed"
    found = _cli("search", "cli-docs", "command", "--size", "3", "--url", service.url)
    assert found.returncode == 0 and json.loads(found.stdout)["total"] == 40
    status = _cli("status", "--url", service.url)
    assert status.returncode == 0 and json.loads(status.stdout)["operations"]
    missing = _cli("search", "no-such-index", "x", "--url", service.url)
    assert missing.returncode == 1 and "no-such-index" in missing.stderr
    down = _cli("search", "cli-docs", "x", "--url", "http://127.0.0.1:9")
    assert down.returncode == 3 and "cannot reach" in down.stderr
    for command in ("serve", "stop", "bulk", "search", "status", "verify", "restore", "eval"):
        assert _cli(command, "--help").returncode == 0
