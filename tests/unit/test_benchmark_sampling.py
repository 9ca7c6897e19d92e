"""benchmarks/run.py's process sampling leaves out processes that hold no memory (exited,
waiting to be reaped, or exiting): counted, they made a role "?" of 0 MB that failed
test_benchmark_smoke's "every figure is positive" now and then. Unit test, no Ray."""

import importlib.util
import os
import time
from pathlib import Path

RUN_PY = Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"


def _load_run():
    spec = importlib.util.spec_from_file_location("benchmarks_run_under_test", RUN_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_an_exited_unreaped_child_is_not_sampled_but_a_live_one_is():
    run = _load_run()
    zombie = os.fork()
    if zombie == 0:
        os._exit(0)
    r, w = os.pipe()
    live = os.fork()
    if live == 0:
        os.close(w)
        os.read(r, 1)  # lives until the test closes the pipe
        os._exit(0)
    os.close(r)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the child has exited once its state is Z
            with open(f"/proc/{zombie}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.01)
        tree = run.process_tree(os.getpid())
        assert zombie not in tree
        assert live in tree and tree[live][1] > 0
        sampler = run.ProcessSampler(interval=60)
        roles = sampler.summary()["peak_rss_mb_by_role"]
        assert "?" not in roles and all(mb > 0 for mb in roles.values()), roles
    finally:
        os.close(w)
        os.waitpid(live, 0)
        os.waitpid(zombie, 0)
