"""Where an empty service's start time goes, phase by phase.

    python benchmarks/startup.py [--repeats 2]

Runs the same steps as `LocalService.start` (raysearch/runner.py), timing each: the
local MongoDB server to accepting connections, `ray.init`, `serve.start` (controller and
proxy), `serve.run` (the ingress replica, which creates the tracker, the persistence
actor and the IndexWorkers), then the wait until /readyz answers 200 (every actor
pinged). Each repeat starts from nothing (fresh data directory, Ray shut down).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


def one_start() -> dict[str, float]:
    import ray
    from ray import serve

    from raysearch.config import NAMESPACE, Settings
    from raysearch.runner import APP_NAME, LocalService
    from raysearch.serve.app import Ingress
    from raysearch.ports import free_port
    from raysearch.storage.local_mongo import LocalMongo

    data_dir = tempfile.mkdtemp(prefix="raysearch-startup-")
    settings = Settings.from_env(data_dir=data_dir, port=free_port())
    phases: dict[str, float] = {}
    mongo = None
    try:
        t = time.perf_counter()
        mongo = LocalMongo(os.path.join(data_dir, "mongo"), log_path=os.path.join(data_dir, "mongo.log")).start()
        settings.mongo_uri = mongo.uri
        phases["mongodb_server"] = time.perf_counter() - t
        t = time.perf_counter()
        ray.init(address="local", namespace=NAMESPACE, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
        phases["ray_init"] = time.perf_counter() - t
        t = time.perf_counter()
        serve.start(http_options={"host": settings.host, "port": settings.port})
        phases["serve_start"] = time.perf_counter() - t
        t = time.perf_counter()
        serve.run(Ingress.bind(settings.model_dump()), name=APP_NAME, route_prefix="/", blocking=False)
        phases["serve_run_call"] = time.perf_counter() - t
        t = time.perf_counter()
        service = LocalService(settings, dashboard=False)
        service.wait_ready()
        phases["until_ready"] = time.perf_counter() - t
        phases["total"] = sum(phases.values())
    finally:
        try:
            serve.shutdown()
        except Exception:  # noqa: BLE001  (best effort: the next repeat starts from nothing)
            pass
        ray.shutdown()
        if mongo is not None:
            mongo.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    return {k: round(v, 2) for k, v in phases.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)
    from raysearch.config import Settings

    print(f"{Settings().workers} IndexWorkers, {os.cpu_count()} CPUs")
    for i in range(args.repeats):
        print(f"start {i + 1}: {one_start()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
