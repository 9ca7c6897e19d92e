"""`raysearch` command line. Exit codes: 0 ok, 1 failure/mismatch, 2 usage, 3 service unreachable."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from raysearch.config import Settings
from raysearch.models import to_jsonable

PIDFILE = "raysearch.pid"


def _pidfile(data_dir: str) -> Path:
    return Path(data_dir) / PIDFILE


def _alive(pid: int) -> bool:
    """Whether the process runs. A zombie (it exited; its parent, such as a supervisor
    that started `raysearch serve`, has not reaped it yet) does not: `stop` waited out
    its whole timeout on one."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):  # no /proc (not Linux): signal 0 is all we know
        return True


def cmd_serve(args) -> int:
    from raysearch.runner import LocalService

    settings = Settings.from_env(port=args.port, data_dir=args.data_dir, host=args.host, workers=args.workers)
    pidfile = _pidfile(settings.data_dir)
    if pidfile.exists():
        info = json.loads(pidfile.read_text())
        if _alive(info["pid"]):
            print(f"raysearch is already running on {settings.data_dir} at {info['url']} (pid {info['pid']})",
                  file=sys.stderr)
            return 1
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    service = LocalService(settings, ray_address=args.ray_address)
    stopping, rc = [], 0
    try:
        service.start(ready_timeout_s=args.ready_timeout,
                      progress=lambda message: print(f"raysearch: {message}", file=sys.stderr, flush=True))
        # After start: ray.init installs its own SIGTERM handler, which would kill us before cleanup.
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
        pidfile.write_text(json.dumps({"pid": os.getpid(), "url": service.url}))
        print(f"raysearch listening on {service.url}", flush=True)
        if service.dashboard_url:
            print(f"Ray dashboard: http://{service.dashboard_url}", flush=True)
        print(f"data directory: {settings.data_dir}; stop with: raysearch stop --data-dir {settings.data_dir}",
              flush=True)
        while not stopping:
            time.sleep(0.5)
            event = service.supervise_mongo()  # the embedded MongoDB server, restarted if it died
            if event:
                print(f"raysearch: {event}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        pass
    except RuntimeError as exc:  # did not become ready: a real error, or the --ready-timeout
        print(f"error: {exc}", file=sys.stderr, flush=True)
        rc = 1
    finally:
        service.stop()
        if pidfile.exists() and json.loads(pidfile.read_text()).get("pid") == os.getpid():
            pidfile.unlink()
        print("raysearch stopped", flush=True)
    return rc


def cmd_stop(args) -> int:
    data_dir = Settings.from_env(data_dir=args.data_dir).data_dir
    pidfile = _pidfile(data_dir)
    if not pidfile.exists():
        print(f"raysearch is not running on {data_dir}", file=sys.stderr)
        return 1
    pid = json.loads(pidfile.read_text())["pid"]
    if not _alive(pid):
        pidfile.unlink()
        print(f"raysearch was not running (stale pid {pid}); cleaned up", file=sys.stderr)
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + 120
    while time.time() < deadline and _alive(pid):
        time.sleep(0.5)
    if _alive(pid):
        print(f"raysearch (pid {pid}) did not stop within 120 s", file=sys.stderr)
        return 1
    print("raysearch stopped")
    return 0


def _client(args):
    from raysearch.client import Client

    return Client(args.url)


def cmd_bulk(args) -> int:
    from raysearch.client import iter_jsonl

    op = _client(args).bulk_index(args.index, iter_jsonl(args.file), progress=not args.quiet)
    print(json.dumps(op, indent=2, default=to_jsonable))
    return 0 if op["status"] == "completed" else 1


def cmd_search(args) -> int:
    result = _client(args).search(args.index, args.query, size=args.size, fields=args.fields, operator=args.operator)
    print(json.dumps(result, indent=2, ensure_ascii=False, default=to_jsonable))
    return 0


def cmd_status(args) -> int:
    client = _client(args)
    print(json.dumps(client.operation(args.operation_id) if args.operation_id else client.operations(), indent=2,
                     default=to_jsonable))
    return 0


def cmd_verify(args) -> int:
    """Shard by shard, with progress on stderr; the combined report on stdout."""
    client = _client(args)
    shards = client.index(args.index)["shards"]
    result = {"ok": True, "terms_checked": 0, "entries_checked": 0, "shards": [], "mismatches": []}
    for n in range(shards):
        print(f"verifying {args.index} shard {n + 1}/{shards} ...", file=sys.stderr, flush=True)
        part = client.verify(args.index, shard=n)
        for name in ("terms_checked", "entries_checked"):
            result[name] += part[name]
        result["shards"] += part["shards"]
        result["mismatches"] += part["mismatches"]
        result["ok"] = result["ok"] and part["ok"]
        print(f"  {part['entries_checked']:,} entries, {part['terms_checked']:,} posting lists: "
              f"{'ok' if part['ok'] else str(len(part['mismatches'])) + ' mismatches'}", file=sys.stderr, flush=True)
    result["mismatches"] = result["mismatches"][:1000]
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


def cmd_restore(args) -> int:
    print(json.dumps(_client(args).restore(args.index, args.shard), indent=2))
    return 0


def cmd_snapshot(args) -> int:
    path = os.path.abspath(args.path)
    print(json.dumps(_client(args).snapshot(args.index, path), indent=2))
    return 0


def cmd_restore_snapshot(args) -> int:
    print(json.dumps(_client(args).restore_snapshot(os.path.abspath(args.path), args.as_name), indent=2))
    return 0


def cmd_eval(args) -> int:
    from raysearch.evaluation import run_eval

    report = run_eval(args.url, args.collection, index=args.index)
    print(json.dumps(report, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="raysearch", description="Full-text search on Ray.")
    sub = parser.add_subparsers(dest="command", required=True)
    url_default = os.environ.get("RAYSEARCH_URL", "http://127.0.0.1:8000")

    p = sub.add_parser("serve", help="start the service locally (Ray, local MongoDB unless a URI is set, Serve)")
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--workers", type=int, default=None, help="IndexWorker pool size (default 12)")
    p.add_argument("--ray-address", default=None, help="join this Ray cluster instead of starting a local one")
    p.add_argument("--ready-timeout", type=float, default=1800,
                   help="give up if not ready after this many seconds (default %(default)s); waits while actors "
                        "are still starting, printing which, and fails early on a real error")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("stop", help="stop a service started with `raysearch serve`")
    p.add_argument("--data-dir", default=None)
    p.set_defaults(func=cmd_stop)

    def with_url(p):
        p.add_argument("--url", default=url_default, help="service URL (default $RAYSEARCH_URL or %(default)s)")
        return p

    p = with_url(sub.add_parser("bulk", help="bulk-index a .jsonl or .jsonl.gz file"))
    p.add_argument("file")
    p.add_argument("--index", required=True)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_bulk)

    p = with_url(sub.add_parser("search", help="search an index"))
    p.add_argument("index")
    p.add_argument("query")
    p.add_argument("--size", type=int, default=10)
    p.add_argument("--fields", default=None)
    p.add_argument("--operator", default="or", choices=["or", "and"])
    p.set_defaults(func=cmd_search)

    p = with_url(sub.add_parser("status", help="show one bulk operation, or the recent ones"))
    p.add_argument("operation_id", nargs="?")
    p.set_defaults(func=cmd_status)

    p = with_url(sub.add_parser("verify", help="compare every posting list in RocksDB with MongoDB; exit 1 on mismatch"))
    p.add_argument("index")
    p.set_defaults(func=cmd_verify)

    p = with_url(sub.add_parser("restore", help="rebuild an index's shards (or one) from MongoDB alone"))
    p.add_argument("index")
    p.add_argument("--shard", type=int, default=None)
    p.set_defaults(func=cmd_restore)

    p = with_url(sub.add_parser("snapshot", help="write a consistent snapshot of an index to a directory "
                                                 "(on the service's host)"))
    p.add_argument("index")
    p.add_argument("path")
    p.set_defaults(func=cmd_snapshot)

    p = with_url(sub.add_parser("restore-snapshot", help="restore a snapshot directory as a new index"))
    p.add_argument("path")
    p.add_argument("--as", dest="as_name", default=None, help="the new index's name (default: the snapshot's)")
    p.set_defaults(func=cmd_restore_snapshot)

    p = with_url(sub.add_parser("eval", help="index a judged collection and print nDCG@10 and recall@100"))
    p.add_argument("--collection", required=True, help="a directory with docs.jsonl[.gz], queries.jsonl and qrels.tsv, e.g. tests/data/corpora/cran")
    p.add_argument("--index", default=None)
    p.set_defaults(func=cmd_eval)

    args = parser.parse_args(argv)
    from raysearch.client import RaySearchClientError, ServiceUnavailable

    try:
        return args.func(args)
    except ServiceUnavailable as exc:
        print(f"error: cannot reach the service: {exc.reason}", file=sys.stderr)
        return 3
    except RaySearchClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into `head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
