#!/usr/bin/env python
"""Where bulk-indexing time goes: py-spy on the actor processes during a bulk.

    python benchmarks/profile_indexing.py [--docs 16000] [--rate 10] [--profile-workers 3] [--out DIR] [--corpus PATH]

Starts a fresh local service (as benchmarks/run.py does), creates an index,
attaches `py-spy record` (sampling wall-clock stacks, --nonblocking) to every
ShardStore of that index, the first --profile-workers IndexWorkers (they are
interchangeable), the tracker, the persistence actor and the Serve ingress
replica, bulk-indexes --docs documents through the HTTP client, and stops the
profilers when the operations complete. Samples of idle threads that py-spy
cannot tell are idle (Ray's main loop waiting for a task, pymongo's monitor
threads, idle thread pools and event loops) are left out and counted apart.
Then it prints, per actor role: busy samples (÷ rate ≈ busy seconds: on CPU or
blocked inside a call), the functions with the most samples on top of the
stack (self) and anywhere in it (inclusive, once per sample), the hottest
lines, plus CPU seconds per process role from /proc (py-spy's own included).
Shard 0 is recorded with --native (C/C++ frames: what RocksDB is doing inside
a write) unless --no-native.

Raw collapsed stacks are kept in --out/profile/ (flamegraph.pl or speedscope
read them). Profiling slows the profiled processes a little: use run.py for the
figures and this for the shape.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402  (benchmarks/run.py)

os.environ.setdefault("RAY_AUTH_MODE", "disabled")


def py_spy_executable() -> str:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else (shutil.which("py-spy") or "py-spy")


def start_recorder(exe: str, pid: int, rate: int, out: Path, native: bool = False,
                   attempts: int = 4) -> subprocess.Popen | None:
    """py-spy record on `pid` (--nonblocking; or --native, which pauses the process
    at each sample to unwind C/C++ frames too). py-spy sometimes fails to read the
    interpreter version at attach ('Failed to find python version'): retry."""
    mode = ["--native"] if native else ["--nonblocking"]
    for _ in range(attempts):
        log = open(out.with_suffix(".log"), "wb")
        proc = subprocess.Popen(
            [exe, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw", *mode,
             "--output", str(out)],
            stdout=log, stderr=subprocess.STDOUT)
        time.sleep(1.0)
        if proc.poll() is None:
            return proc
        log.close()
    return None


def parse_collapsed(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    if not path.exists():
        return stacks
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def _short(frame: str, line: bool = False) -> str:
    """'write (raysearch/storage/rocks.py:38)' -> 'RocksKV.write (raysearch/storage/rocks.py)'
    (the line kept only with `line`), paths shortened to the package."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    if not line:
        where = re.sub(r":\d+$", "", where)
    return f"{name} ({where})" if where else name


# Wall-clock samples of threads that are idle though py-spy counts them active.
IDLE_LEAVES = ("Worker.main_loop", "Thread.run", "_worker", "_run_user_code_event_loop", "Condition.wait",
               "Event.wait", "Thread.join")
BACKGROUND = ("PeriodicExecutor._run",)  # pymongo's server monitor and RTT threads


def native_wait(frames: list[str]) -> list[str]:
    """Name a thread blocked in libc after the frame that tells why (native stacks:
    the libc leaf itself is often an unresolved address)."""
    names = [f.partition(" (")[0] for f in frames]
    for marker, label in (("lock_PyThread_acquire_lock", "(blocked: acquiring a threading.Lock)"),
                          ("take_gil", "(blocked: waiting for the GIL)"),
                          ("pthread_cond_wait", "(blocked: pthread_cond_wait - the GIL or a native wait)"),
                          ("pthread_cond_timedwait", "(blocked: pthread_cond_timedwait - the GIL or a native wait)"),
                          ("fdatasync", "fdatasync (libc)")):
        if marker in names:
            return frames[: names.index(marker)] + [label]
    return frames


def is_idle(frames: list[str]) -> bool:
    if not frames:
        return True
    names = [f.partition(" (")[0] for f in frames]
    return names[-1] in IDLE_LEAVES or any(n in BACKGROUND for n in names)


def summarize(stacks: list[tuple[list[str], int]], top: int = 15, native: bool = False) -> dict:
    """Busy samples by function. With `native` (C/C++ frames recorded), only samples
    inside raysearch code count (Ray's C++ threads idle in libc waits otherwise
    dominate), and the native leaves under each RocksDB call are listed."""
    self_c, incl, lines = Counter(), Counter(), Counter()
    under: dict[str, Counter] = {}
    total = idle = 0
    for frames, count in stacks:
        # py-spy may put 'process ...' / 'thread ...' first, then root -> leaf
        frames = [f for f in frames if f.strip() and not f.startswith(("process ", "thread "))]
        if is_idle(frames) or (native and not any("raysearch/" in f for f in frames)):
            idle += count
            continue
        if native:
            frames = native_wait(frames)
            names = [f.partition(" (")[0] for f in frames]
            for target in ("RocksKV.write", "RocksKV.multi_get", "RocksKV.scan"):
                if target in names:
                    below = frames[names.index(target) + 1 :]
                    leaf = _short(below[-1])[:110] if below else "(Python code of the method)"
                    under.setdefault(target, Counter())[leaf] += count
        total += count
        self_c[_short(frames[-1])] += count
        lines[_short(frames[-1], line=True)] += count
        for f in {_short(f) for f in frames}:
            incl[f] += count
    pct = lambda c: round(100 * c / total, 1) if total else 0.0  # noqa: E731
    return {"samples": total, "idle_samples": idle,
            "native_under": {t: {"samples": sum(c.values()), "leaves": c.most_common(top)} for t, c in under.items()},
            "self": [(f, c, pct(c)) for f, c in self_c.most_common(top)],
            "inclusive": [(f, c, pct(c)) for f, c in incl.most_common(top)],
            "lines": [(f, c, pct(c)) for f, c in lines.most_common(top)]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=int, default=16000)
    p.add_argument("--rate", type=int, default=10, help="py-spy samples per second per process")
    p.add_argument("--profile-workers", type=int, default=3, help="IndexWorkers to profile (all are alike)")
    p.add_argument("--out", default=str(run.DEFAULT_OUT))
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--corpus", default=None, metavar="PATH", help="as in run.py (default: the Debian corpus, built when missing)")
    p.add_argument("--no-native", dest="native", action="store_false",
                   help="do not record shard 0 with --native (C/C++ frames; pauses it at each sample)")
    p.add_argument("--vectors", action="store_true",
                   help="each document with a 256-d vector (benchmarks/vectors.py's), into an index with a vector field")
    args = p.parse_args(argv)

    import ray

    from raysearch.actors import registry
    from raysearch.client import Client
    from raysearch.config import NAMESPACE, Settings
    from raysearch.runner import LocalService
    from raysearch.ports import free_port

    out = Path(args.out) / "profile"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    docs = run.load_docs(args.docs, args.corpus)
    index_body = None
    if args.vectors:
        from vectors import DIMS, with_vectors

        docs = with_vectors(docs)
        index_body = {"fields": {**run.DEBIAN_FIELDS, "emb": {"type": "vector", "dims": DIMS}}}
    data_dir = tempfile.mkdtemp(prefix="raysearch-profile-")
    overrides = {"workers": args.workers} if args.workers else {}
    settings = Settings.from_env(data_dir=data_dir, port=free_port(), **overrides)
    settings.mongo_uri = None
    service = LocalService(settings, dashboard=False)
    sampler = run.ProcessSampler()
    recorders: dict[str, tuple[subprocess.Popen, Path, str]] = {}
    exe = py_spy_executable()
    index = "profile"
    try:
        service.start()
        client = Client(service.url, timeout=300)
        client.create_index(index, index_body)
        s = service.settings
        targets: dict[str, tuple[str, int]] = {}  # label -> (role, pid)

        def pid_of(name: str) -> int:
            return ray.get(ray.get_actor(name, namespace=NAMESPACE).pid.remote(), timeout=60)

        for n in range(s.shards):
            role = "ShardStore" if n or not args.native else "ShardStore 0 with native frames"
            targets[f"shard{n}"] = (role, pid_of(registry.shard_name(index, n)))
        for i in range(min(s.workers, args.profile_workers)):
            targets[f"worker{i}"] = ("IndexWorker", pid_of(registry.worker_name(i)))
        targets["tracker"] = ("TrackerActor", pid_of(registry.TRACKER))
        targets["persistence"] = ("PersistenceActor", pid_of(registry.PERSISTENCE))
        for pid in run.process_tree(os.getpid()):
            if "ServeReplica" in run.process_role(pid, os.getpid()):
                targets[f"ingress{pid}"] = ("Ingress", pid)
        for label, (role, pid) in targets.items():
            path = out / f"{label}-{pid}.txt"
            proc = start_recorder(exe, pid, args.rate, path, native=role.endswith("native frames"))
            if proc is None:
                print(f"py-spy could not attach to {label} (pid {pid}); see {path.with_suffix('.log')}")
            else:
                recorders[label] = (proc, path, role)
        print(f"profiling {len(recorders)} processes at {args.rate} Hz; bulk of {len(docs)} docs ...", flush=True)

        sampler.start()
        m = run.measure_bulk(client, index, docs, sampler, create=False)
        print(f"searchable in {m['searchable_s']} s, completed in {m['completed_s']} s ({m['status']})", flush=True)
    finally:
        for proc, _, _ in recorders.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        for proc, _, _ in recorders.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        sampler.stop()
        service.stop()
        shutil.rmtree(data_dir, ignore_errors=True)

    by_role: dict[str, list] = {}
    per_process = {}
    for label, (_, path, role) in recorders.items():
        stacks = parse_collapsed(path)
        by_role.setdefault(role, []).extend(stacks)
        per_process[label] = summarize(stacks, 0)["samples"]
    duration = m["completed_s"] or 0
    report = {"docs": len(docs), "rate": args.rate, "bulk": m, "samples_per_process": per_process,
              "roles": {role: summarize(stacks, args.top, native=role.endswith("native frames"))
                        for role, stacks in by_role.items()}}
    (Path(args.out) / "profile.json").write_text(json.dumps(report, indent=2) + "\n")

    lines = [f"# Indexing profile: {len(docs):,} docs, py-spy {args.rate} Hz, bulk {duration} s to completed", "",
             "CPU seconds by process role during the bulk (/proc): "
             + ", ".join(f"{k} {v}" for k, v in m["memory"]["cpu_s_by_role"].items()), "",
             "Busy samples per process (÷ rate ≈ seconds on CPU or blocked in a call): "
             + ", ".join(f"{k} {v}" for k, v in per_process.items()), ""]
    for role, summary in sorted(report["roles"].items(), key=lambda kv: -kv[1]["samples"]):
        left_out = "outside raysearch code" if summary["native_under"] or role.endswith("native frames") else "idle"
        lines += [f"## {role}: {summary['samples']} busy samples ({summary['idle_samples']} {left_out} left out)", "",
                  "| self (top of stack) | samples | % | inclusive (anywhere in stack) | samples | % |",
                  "|---|---:|---:|---|---:|---:|"]
        for (fs, cs, ps), (fi, ci, pi) in zip(summary["self"], summary["inclusive"]):
            lines.append(f"| `{fs[:110]}` | {cs} | {ps} | `{fi[:110]}` | {ci} | {pi} |")
        for target, part in summary["native_under"].items():
            lines += ["", f"Inside `{target}` ({part['samples']} samples), native leaves: "
                      + "; ".join(f"`{leaf}` {c}" for leaf, c in part["leaves"][:8])]
        lines += ["", "Hottest lines: " + "; ".join(f"`{f}` {p} %" for f, _, p in summary["lines"][:6]), ""]
    text = "\n".join(lines)
    (Path(args.out) / "profile.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
