"""A driver script on the test service's Ray cluster (run by test_ray_data.py in its own
process, RAY_ADDRESS set): writes a JSON-lines file to an index with RaySearchDatasink.

    python tests/integration/ray_data_driver.py JSONL INDEX WAIT
Prints one JSON line: {"ok": true, "seconds": ...} or {"ok": false, "type", "reason", "failures"}.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import ray  # noqa: E402

import raysearch  # noqa: E402
from raysearch.errors import DatasinkError  # noqa: E402


def main(path: str, index: str, wait: str) -> int:
    ray.init(address="auto", log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    started = time.time()
    try:
        ray.data.read_json(path).write_datasink(raysearch.RaySearchDatasink(index, wait=wait))
    except DatasinkError as exc:
        print(json.dumps({"ok": False, "type": type(exc).__name__, "reason": exc.reason, "failures": exc.failures}))
        return 1
    print(json.dumps({"ok": True, "seconds": round(time.time() - started, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
