"""Start and stop a local MongoDB wire-protocol server (SecantusDB) as a child process.

Used by `raysearch serve` when RAYSEARCH_MONGO_URI is unset, and by the tests.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from pymongo import MongoClient

from raysearch.ports import free_port


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
    """A SecantusDB server of one data directory. Its pid is kept beside the data
    (`<storage>.pid`), so a start after a crash of whoever started it finds the server still
    holding the directory and stops it first; `ensure_running` restarts one that died."""

    def __init__(self, storage_path: str, port: int | None = None, log_path: str | None = None):
        self.storage_path = storage_path
        self.port = port or free_port()
        self.log_path = log_path or os.path.join(storage_path, "..", "mongo.log")
        self.process: subprocess.Popen | None = None
        self.restarts = 0

    @property
    def pid_path(self) -> str:
        return os.path.abspath(self.storage_path).rstrip("/") + ".pid"

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
        self._clear_stale()
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [_executable(), "--host", "127.0.0.1", "--port", str(self.port), "--storage-path", os.path.abspath(self.storage_path),
             "--log-level", "WARNING"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=_server_env(),
        )
        Path(self.pid_path).write_text(str(self.process.pid))
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

    def _clear_stale(self) -> None:
        """Stop a server left running on this data directory by a process that crashed (its
        pid file names it, and its command line names this directory)."""
        try:
            pid = int(Path(self.pid_path).read_text().strip())
        except (OSError, ValueError):
            return
        if _serves(pid, os.path.abspath(self.storage_path)):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            deadline = time.time() + 30
            while _alive(pid) and time.time() < deadline:
                time.sleep(0.1)
        Path(self.pid_path).unlink(missing_ok=True)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ensure_running(self, timeout_s: float = 60) -> bool:
        """Start the server again (same port, same data) if it died; True if it was restarted."""
        if self.alive():
            return False
        self.process = None
        self.restarts += 1
        self.start(timeout_s)
        return True

    def stop(self, kill: bool = False) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        Path(self.pid_path).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie (exited, not yet reaped by its parent) holds nothing
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def _serves(pid: int, storage_path: str) -> bool:
    """Whether process `pid` is a server of this data directory (not a reused pid)."""
    if not _alive(pid):
        return False
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"--storage-path" in args and os.fsencode(storage_path) in args
