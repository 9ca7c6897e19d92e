"""PersistenceActor: the single writer of posting chunks to MongoDB.

A drain cycle, per shard: read the oldest change-log entries FROM ROCKSDB (via
the shard, the DB's only owner; each entry holds one batch's keys and values,
written in the same WriteBatch as the data), write them as chunk documents
(<= chunk_postings postings each, keyed by _id so a replay is idempotent), and
only then clear exactly those log entries. Up to DRAIN_WINDOW shards are asked at
once: each cuts and compresses its chunks in its own process while the others do,
and this actor only writes them. Then the shard's persisted watermark
goes to the tracker. Cycles visit only the indexes with batches not yet persisted
(the tracker names them); a full cycle over every index runs every
`full_drain_interval_s` as a safety net (drain_once).

A second thread compacts each shard's MongoDB chunk log in the background
(index/compaction.py, storage/mongo.py): once a shard's log holds history (values its
entries superseded, as the shard counted them) worth `compact_busy_garbage_ratio` of the
live bytes while writes go on, or `compact_garbage_ratio` once its log has been still for
`compact_idle_s`, or as many new entries as its compacted state holds live ones (and at
least `compact_min_entries`), its live entries are rewritten as a new generation and what
they replace is deleted, so MongoDB holds live data, not every version ever written.
Compaction only touches chunks up to a seq already written, the drain only writes after
it: the two never write the same documents.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time

import ray

from raysearch import indexmeta
from raysearch.actors import names
from raysearch.actors.shard_store import shard as shard_handle
from raysearch.actors.traffic import Traffic
from raysearch.config import Settings
from raysearch.index.compaction import compaction_due, cut_sorted, replay_into
from raysearch.errors import StorageFull
from raysearch.retry import Backoff
from raysearch.storage.rocks import RocksKV
from raysearch.storage.mongo import MongoStore

log = logging.getLogger("raysearch.persistence")
REPORT_EVERY_S = 2.0
# Shards asked for their changes at once: each answers with up to `drain_limit` entries
# (tens of MB at most), so this bounds what one cycle holds in memory.
DRAIN_WINDOW = 8


@ray.remote(concurrency_groups=names.CONTROL_GROUPS)  # ping, status: see names.SERIAL
class PersistenceActor:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.mongo = MongoStore(settings.mongo_uri, settings.mongo_db)
        self._next_seq: dict[tuple[str, int], int] = {}
        self._reported: dict[tuple[str, int], tuple[int, float]] = {}
        self._to_report: dict[str, dict[int, int]] = {}  # index -> shard -> watermark, sent once a cycle
        self.tracker_reports = 0  # tracker calls made with watermarks (one per cycle at most)
        self.cycles = 0  # drain cycles run
        self._lock = threading.Lock()
        self.last_error: str | None = None
        self.index_errors: dict[str, str] = {}  # index -> why its record cannot be read (others go on)
        self.last_cycle_at = 0.0
        self.last_full_cycle_at = 0.0
        self.entries_written = 0
        self.chunks_written = 0
        self._new_entries: dict[tuple[str, int], int] = {}  # log entries written since the last compaction
        self._live_entries: dict[tuple[str, int], int] = {}  # entries of the shard's compacted generation
        self._garbage: dict[tuple[str, int], int] = {}  # bytes the log's entries superseded since then
        self._live_bytes: dict[tuple[str, int], int] = {}  # bytes of the compacted generation
        self._last_written: dict[tuple[str, int], float] = {}  # monotonic time of the log's last new chunk
        self._compact_lock = threading.Lock()
        self.compactions = 0
        self.last_compaction: dict | None = None
        self.compact_error: str | None = None
        self.visits: dict[tuple[str, int], int] = {}  # drain visits per shard: an idle index is not polled
        self._traffic = Traffic()  # chunk bytes in from each shard and out to MongoDB (actors/traffic.py)
        threading.Thread(target=self._loop, daemon=True, name="drain").start()
        threading.Thread(target=self._compact_loop, daemon=True, name="compact").start()

    def _loop(self) -> None:
        failures = 0
        backoff = Backoff(self.settings.backoff_base_s * 2, cap=10.0)
        while True:
            full = time.time() - self.last_full_cycle_at >= self.settings.full_drain_interval_s
            try:
                moved = self.drain_once(full=full)
                failures, self.last_error = 0, None
            except Exception as exc:  # MongoDB down, shard restarting...: wait and retry
                failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("drain failed (%d): %s", failures, self.last_error)
                time.sleep(backoff.delay(failures - 1))
                continue
            if not moved:
                time.sleep(self.settings.persist_interval_s)

    def drain_once(self, full: bool = True) -> int:
        """One cycle; returns entries persisted. A full cycle visits every shard of every index;
        otherwise only the shards of the indexes the tracker names as having batches not yet
        persisted, so an idle cycle costs O(indexes with active work), not O(all indexes): with
        hundreds of indexes a full cycle is hundreds of round trips, every 0.2 s. Changes the
        tracker does not know of (a batch applied by an operation that then failed) wait at most
        `full_drain_interval_s` in the shard's RocksDB change log, which is durable."""
        with self._lock:
            moved = 0
            tracker = names.find(names.TRACKER)
            wanted = None if full else self._indexes_to_drain(tracker)
            if wanted is None:
                metas, full = self.mongo.list_index_metas(), True
            else:
                metas = [meta for meta in map(self.mongo.get_index_meta, wanted) if meta is not None]
            errors = {}
            self.cycles += 1
            try:
                moved += self._drain_indexes(metas, tracker, errors)
            finally:  # what did persist is reported, even if a later shard failed
                self._send_reports(tracker)
            now = time.time()
            if full:
                self.index_errors = errors
                self.last_full_cycle_at = now
            else:
                self.index_errors.update(errors)
            self.last_cycle_at = now
            return moved

    def _drain_indexes(self, metas: list[dict], tracker, errors: dict) -> int:
        visit = []  # (index, shard) of every shard to drain this cycle
        for meta in metas:
            if meta.get("deleting"):  # its shards are being dropped; nothing of it is kept
                continue
            try:
                _, _, shards = indexmeta.parse(meta)
            except indexmeta.CorruptIndex as exc:  # one unreadable record must not stop the others
                errors[str(meta.get("_id"))] = exc.reason
                continue
            visit.extend((meta["_id"], n) for n in range(shards))
        moved = 0
        for start in range(0, len(visit), DRAIN_WINDOW):
            moved += self._drain_shards(visit[start:start + DRAIN_WINDOW], tracker, errors)
        return moved

    @staticmethod
    def _indexes_to_drain(tracker) -> list[str] | None:
        """The tracker's indexes with unpersisted batches; None (drain everything) without it."""
        if tracker is None:
            return None
        try:
            return ray.get(tracker.indexes_to_drain.remote(), timeout=30)
        except Exception as exc:  # restarting tracker: a full cycle is always correct
            log.info("tracker unavailable for the drain's index list (%s): full cycle", exc)
            return None

    def _drain_shards(self, group: list[tuple[str, int]], tracker, errors: dict) -> int:
        """Drain a group of shards: every shard is asked for its changes at once, and cuts
        and compresses its chunks in its own process, on its own node, meanwhile (it was one
        shard after another: the cycle's wall time grew with the shards); this actor then
        only writes them, shard by shard in order, and acknowledges them all at once."""
        handles = [shard_handle(self.settings, index, n) for index, n in group]
        collected = [h.collect_changes.remote(self.settings.drain_limit) for h in handles]
        acks, moved = [], 0
        try:
            for (index, n), handle, ref in zip(group, handles, collected):
                self.visits[(index, n)] = self.visits.get((index, n), 0) + 1
                blobs, log_keys, garbage = ray.get(ref, timeout=120)
                moved += self._write_collected(index, n, blobs, garbage)
                acks.append(((index, n), handle.ack_changes.remote(log_keys)))
        finally:  # what was written is acknowledged and reported, even if a later shard failed
            for (index, n), ref in acks:
                try:
                    upto = ray.get(ref, timeout=120)
                except StorageFull as exc:  # that shard waits for disk space; the others drain on
                    errors[str(index)] = exc.reason
                    continue
                self._report(tracker, index, n, upto)
        return moved

    def _write_collected(self, index: str, n: int, blobs: list, garbage: int) -> int:
        """Write one shard's collected chunk payloads to MongoDB; returns the entries they hold."""
        entries = sum(blob[0] for blob in blobs)
        if not blobs:
            return 0
        key = (index, n)
        if key not in self._next_seq:
            self._next_seq[key] = self.mongo.next_chunk_seq(index, n)
            # a backlog from before a restart
            self._new_entries[key], self._garbage[key] = self.mongo.log_stats(index, n)
            head = self.mongo.head(index, n)
            self._live_entries[key] = head.get("live_entries", 0)
            self._live_bytes[key] = head.get("live_bytes", 0)
        self._write_with_retries(index, n, self._next_seq[key], blobs, garbage)
        self._next_seq[key] += len(blobs)
        self._new_entries[key] = self._new_entries.get(key, 0) + entries
        self._garbage[key] = self._garbage.get(key, 0) + garbage
        self._last_written[key] = time.monotonic()
        self.entries_written += entries
        self.chunks_written += len(blobs)
        nbytes = sum(len(blob[2]) for blob in blobs)
        self._traffic.receive(names.shard_name(index, n), nbytes)
        self._traffic.send("mongodb", nbytes)
        return entries

    def _write_with_retries(self, index: str, n: int, seq: int, blobs, garbage: int = 0) -> None:
        """A chunk write, tried `persist_attempts` times (idempotent: chunks are keyed by seq);
        the drain's own loop then waits out a longer outage."""
        attempts, backoff = self.settings.persist_attempts, Backoff(self.settings.backoff_base_s)
        for attempt in range(attempts):
            try:
                self.mongo.write_chunks(index, n, seq, blobs, garbage)
                return
            except Exception:
                if attempt == attempts - 1:
                    raise
                time.sleep(backoff.delay(attempt))

    def _report(self, tracker, index: str, n: int, upto: int) -> None:
        """Note a shard's persisted watermark for the cycle's one report to the tracker."""
        if tracker is None:
            return
        last = self._reported.get((index, n))
        if last and last[0] == upto and time.time() - last[1] < REPORT_EVERY_S:
            return
        self._to_report.setdefault(index, {})[n] = upto

    def _send_reports(self, tracker) -> None:
        """Every watermark the cycle moved, in ONE tracker call (was one per shard, each
        scanning the index's unpersisted operations: calls and scans grew with shards)."""
        reports, self._to_report = self._to_report, {}
        if not reports or tracker is None:
            return
        try:
            ray.get(tracker.shards_persisted.remote(reports), timeout=60)
        except BaseException:  # the next cycle sends them again (newer marks of the same shards win)
            for index, marks in reports.items():
                self._to_report[index] = {**marks, **self._to_report.get(index, {})}
            raise
        self.tracker_reports += 1
        now = time.time()
        for index, marks in reports.items():
            for n, upto in marks.items():
                self._reported[(index, n)] = (upto, now)

    def flush(self, timeout_s: float = 300) -> int:
        """Drain until no shard has changes left (tests, `verify`); returns entries persisted."""
        total, deadline = 0, time.time() + timeout_s
        while time.time() < deadline:
            moved = self.drain_once()
            total += moved
            if not moved:
                return total
        raise TimeoutError("persistence did not catch up in time")

    # ---------------------------------------------------------- compaction
    def _compact_loop(self) -> None:
        while True:
            time.sleep(self.settings.compact_interval_s)
            try:
                for key in [k for k in list(self._new_entries) if self._compaction_due(k)]:
                    self.compact(*key)
                self.compact_error = None
            except Exception as exc:  # MongoDB down...: the log just stays longer
                self.compact_error = f"{type(exc).__name__}: {exc}"
                log.warning("compaction failed: %s", self.compact_error)

    def _compaction_due(self, key: tuple[str, int]) -> bool:
        """index/compaction.py's compaction_due for shard `key`'s log."""
        return compaction_due(self.settings, self._new_entries.get(key, 0), self._garbage.get(key, 0),
                              self._live_entries.get(key, 0), self._live_bytes.get(key, 0),
                              time.monotonic() - self._last_written.get(key, 0.0))

    def compact(self, index: str, n: int) -> dict:
        """Rewrite shard n's chunks up to the last written seq as one generation of live entries."""
        with self._compact_lock:
            started = time.time()
            head = self.mongo.head(index, n)
            if head.get("drop"):  # a crash interrupted the last compaction's deletions: finish them
                self.mongo.drop_replaced(index, n)
            upto = self.mongo.next_chunk_seq(index, n) - 1  # every seq up to here is written
            if upto <= head["upto"]:
                return {"index": index, "shard": n, "compacted": False}
            before = (head.get("chunks") or 0) + upto - head["upto"]
            gen = head["gen"] + 1
            # The live state is replayed into a scratch RocksDB, not a dict: memory stays
            # bounded by RocksDB's buffers whatever the shard's size, and its scan yields the
            # entries in key order for the new generation.
            scratch_path = os.path.join(self.settings.data_dir, "scratch", f"compact-{index}-{n}")
            shutil.rmtree(scratch_path, ignore_errors=True)
            scratch = RocksKV(scratch_path, sync=False)
            live = 0
            try:
                replay_into(scratch, self.mongo.iter_compactable(index, n, head, upto))

                def entries():
                    nonlocal live
                    for item in scratch.scan(b"", b"\xff"):
                        live += 1
                        yield item

                count, size = self.mongo.write_generation(index, n, gen,
                                                          cut_sorted(entries(), self.settings.chunk_postings))
            finally:
                scratch.close()
                shutil.rmtree(scratch_path, ignore_errors=True)
            meta = self.mongo.get_index_meta(index)
            if meta is None or meta.get("deleting"):  # deleted meanwhile: leave nothing behind
                self.mongo.delete_generation(index, n, gen, count)
                self.mongo.delete_chunks(index)  # DELETE /indexes removes the rest by _id; this sweeps what it missed
                return {"index": index, "shard": n, "compacted": False}
            self.mongo.switch_generation(index, n, gen, upto, live, size, count, head)
            self.mongo.drop_replaced(index, n)
            self._live_entries[(index, n)] = live
            self._live_bytes[(index, n)] = size
            # what was written since `upto`
            self._new_entries[(index, n)], self._garbage[(index, n)] = self.mongo.log_stats(index, n)
            self.compactions += 1
            self.last_compaction = {"index": index, "shard": n, "gen": gen, "upto": upto, "chunks_before": before,
                                    "chunks_after": count, "live_entries": live, "live_bytes": size,
                                    "seconds": round(time.time() - started, 3)}
            return {**self.last_compaction, "compacted": True}

    def forget_index(self, index: str) -> None:
        with self._lock:
            for key in [k for k in self._new_entries if k[0] == index]:
                for counts in (self._new_entries, self._live_entries, self._garbage, self._live_bytes,
                               self._last_written):
                    counts.pop(key, None)
            for key in [k for k in self._next_seq if k[0] == index]:
                del self._next_seq[key]
            for key in [k for k in self._reported if k[0] == index]:
                del self._reported[key]
            for key in [k for k in self.visits if k[0] == index]:
                del self.visits[key]

    @ray.method(concurrency_group="control")
    def status(self) -> dict:
        return {
            "last_error": self.last_error,
            "index_errors": self.index_errors,
            "last_cycle_at": self.last_cycle_at,
            "last_full_cycle_at": self.last_full_cycle_at,
            "entries_written": self.entries_written,
            "chunks_written": self.chunks_written,
            "compactions": self.compactions,
            "last_compaction": self.last_compaction,
            "compact_error": self.compact_error,
            "visits": {f"{i}:{n}": count for (i, n), count in list(self.visits.items())},
            "tracker_reports": self.tracker_reports,
            "cycles": self.cycles,
            "logs": {f"{i}:{n}": {"new_entries": new, "garbage_bytes": self._garbage.get((i, n), 0),
                                  "live_entries": self._live_entries.get((i, n), 0),
                                  "live_bytes": self._live_bytes.get((i, n), 0),
                                  "compaction_due": self._compaction_due((i, n))}
                     for (i, n), new in list(self._new_entries.items())},
        }

    @ray.method(concurrency_group="control")
    def traffic(self) -> dict:
        return self._traffic.snapshot()

    @ray.method(concurrency_group="control")
    def pid(self) -> int:
        return os.getpid()

    @ray.method(concurrency_group="control")
    def ping(self) -> bool:
        return True


def persistence(settings: Settings):
    """Get or create the PersistenceActor (one call at a time: see names.SERIAL)."""
    return PersistenceActor.options(**names.options(names.PERSISTENCE, max_task_retries=-1, **names.SERIAL)).remote(
        settings)
