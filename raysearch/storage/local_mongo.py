"""Start and stop a local MongoDB wire-protocol server (SecantusDB) as a child process.

Used by `raysearch serve` when RAYSEARCH_MONGO_URI is unset, and by the tests.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from pymongo import MongoClient


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _executable() -> str:
    beside = Path(sys.executable).with_name("secantusd-py")
    return str(beside) if beside.exists() else (shutil.which("secantusd-py") or "secantusd-py")


def _server_env() -> dict:
    """The server's environment, with glibc malloc told to give large blocks back.
    SecantusDB is Python: each chunk document it reads or writes (up to ~1 MB) is a large
    allocation, and glibc's adaptive mmap threshold soon serves those from heaps it never
    returns, so its RSS followed the most it had ever read at once (5.8 GB at 1M documents
    in the scale run). Blocks of 128 KB and up are mmap'd and unmapped on free instead;
    two arenas bound the fragmentation of its threads' heaps."""
    env = dict(os.environ)
    env.setdefault("MALLOC_MMAP_THRESHOLD_", str(128 * 1024))
    env.setdefault("MALLOC_ARENA_MAX", "2")
    return env


class LocalMongo:
    def __init__(self, storage_path: str, port: int | None = None, log_path: str | None = None):
        self.storage_path = storage_path
        self.port = port or free_port()
        self.log_path = log_path or os.path.join(storage_path, "..", "mongo.log")
        self.process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        # retryWrites=false: SecantusDB 0.7.0b3 keeps every retryable write's record for 30
        # minutes and scans them all on each write (TransactionRegistry._prune_retryable_locked),
        # so each write cost grew with the writes of the last half hour (per-PUT latency 73 -> 200 ms
        # over 3,000 PUTs, half of the server's CPU in that scan, measured with py-spy). raysearch's
        # writes are idempotent upserts that it retries itself; a real MongoDB keeps them retryable.
        return f"mongodb://127.0.0.1:{self.port}/?retryWrites=false"

    def start(self, timeout_s: float = 60) -> "LocalMongo":
        Path(self.storage_path).mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [_executable(), "--host", "127.0.0.1", "--port", str(self.port), "--storage-path", self.storage_path,
             "--log-level", "WARNING"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=_server_env(),
        )
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"local MongoDB server exited with {self.process.returncode}; see {self.log_path}")
            try:
                MongoClient(self.uri, serverSelectionTimeoutMS=500).admin.command("ping")
                return self
            except Exception:
                time.sleep(0.2)
        raise RuntimeError(f"local MongoDB server did not answer within {timeout_s}s; see {self.log_path}")

    def stop(self, kill: bool = False) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
