"""The embedded MongoDB server (storage/local_mongo.py), real processes, no Ray: one that
dies is started again on its port and data, and a start finds a server left running on
its data directory (by a `raysearch serve` that crashed) and clears it first."""

from __future__ import annotations

import os
import signal
import time

from pymongo import MongoClient

from raysearch.storage.local_mongo import LocalMongo


def _count(uri: str) -> int:
    return MongoClient(uri, serverSelectionTimeoutMS=5000).raysearch.things.count_documents({})


def _client(uri: str) -> MongoClient:
    """Journaled writes, as MongoStore makes them: acknowledged once durable."""
    return MongoClient(uri, journal=True)


def test_a_dead_server_is_restarted_with_its_data(no_ray, tmp_path):
    server = LocalMongo(str(tmp_path / "data"), log_path=str(tmp_path / "mongo.log")).start()
    try:
        _client(server.uri).raysearch.things.insert_many([{"n": i} for i in range(10)])
        assert not server.ensure_running()  # alive: nothing to do
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait()
        assert not server.alive()
        assert server.ensure_running() and server.restarts == 1
        assert _count(server.uri) == 10  # same port, same data
    finally:
        server.stop()


def test_a_start_clears_a_stale_server_of_its_data_directory(no_ray, tmp_path):
    first = LocalMongo(str(tmp_path / "data"), log_path=str(tmp_path / "mongo.log")).start()
    stale_pid = first.process.pid
    _client(first.uri).raysearch.things.insert_one({"n": 1})
    # whoever started it crashed: the server runs on, holding the data directory
    second = LocalMongo(str(tmp_path / "data"), log_path=str(tmp_path / "mongo.log")).start()
    try:
        first.process.wait(timeout=30)  # cleared: killed by the second start
        assert first.process.returncode is not None and second.process.pid != stale_pid
        assert _count(second.uri) == 1
    finally:
        second.stop()
    assert not os.path.exists(second.pid_path)


def test_a_pid_file_of_another_process_is_left_alone(no_ray, tmp_path):
    """A reused pid (a process that is not this directory's server) is never killed."""
    server = LocalMongo(str(tmp_path / "data"), log_path=str(tmp_path / "mongo.log"))
    os.makedirs(tmp_path / "data", exist_ok=True)
    with open(server.pid_path, "w") as f:
        f.write(str(os.getpid()))  # this test's own process
    started = time.time()
    server.start()
    try:
        assert time.time() - started < 60 and server.alive()
    finally:
        server.stop()


def test_what_mongostore_acknowledges_survives_a_kill9_of_the_server(no_ray, tmp_path):
    """Ack means durable: the intake log and checkpoints written through MongoStore are in
    the server's journal when the write returns (before journal=True, a kill -9 a moment
    after an acknowledged write lost it)."""
    from raysearch.storage.mongo import MongoStore

    server = LocalMongo(str(tmp_path / "data"), log_path=str(tmp_path / "mongo.log")).start()
    try:
        store = MongoStore(server.uri)
        store.put_batches("op1", "idx", [b"batch-0", b"batch-1", b"batch-2"])
        store.save_operation({"operation_id": "op1", "index": "idx", "status": "indexing", "created_at": 1.0})
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait()
        server.ensure_running()
        again = MongoStore(server.uri)
        assert again.get_batch("op1", 2) == b"batch-2" and again.load_operation("op1")["status"] == "indexing"
    finally:
        server.stop()
