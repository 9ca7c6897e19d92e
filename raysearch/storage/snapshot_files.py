"""An index's snapshot on disk: a directory that can be moved, kept and restored elsewhere.

    manifest.json             format, the index's settings and shard count, the cut, counts
                              and each file's SHA-256
    shard-<n>.chunks.zst      zstd stream of the shard's persisted state as MongoDB holds it:
                              its chunk payloads in replay order ([u64 length][payload] each;
                              a payload is index/encoding.py's columnar entries)

What is copied is MongoDB's state -- the system of record, from which a shard rebuilds its
RocksDB -- so a restore writes the payloads back as the chunks of a new index and its
shards rebuild themselves from them, exactly as after a lost disk. Blocking IO (the caller
runs it in a thread); pure of Ray.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from typing import Iterable, Iterator

import zstandard

FORMAT = 1
MANIFEST = "manifest.json"
_LEN = struct.Struct(">Q")


class SnapshotError(ValueError):
    """A snapshot directory that cannot be written or read (the message says why)."""


def shard_file(n: int) -> str:
    return f"shard-{n}.chunks.zst"


def prepare(path: str) -> None:
    """A directory to write a snapshot into: created, or existing and empty."""
    if not os.path.isabs(path):
        raise SnapshotError(f"the snapshot path must be absolute (a directory on the service's host), got {path!r}")
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise SnapshotError(f"{path!r} exists and is not an empty directory")
    os.makedirs(path, exist_ok=True)


def write_shard(path: str, n: int, payloads: Iterable[bytes]) -> dict:
    """Write one shard's payloads; -> {"chunks", "bytes" (compressed), "sha256"}."""
    target = os.path.join(path, shard_file(n))
    digest, chunks = hashlib.sha256(), 0
    with open(target + ".tmp", "wb") as raw:
        with zstandard.ZstdCompressor(level=3).stream_writer(raw, closefd=False) as out:
            for payload in payloads:
                out.write(_LEN.pack(len(payload)))
                out.write(payload)
                chunks += 1
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(target + ".tmp", target)
    with open(target, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"chunks": chunks, "bytes": os.path.getsize(target), "sha256": digest.hexdigest()}


def write_manifest(path: str, manifest: dict) -> None:
    """Last, atomically: a directory without it is an unfinished snapshot."""
    target = os.path.join(path, MANIFEST)
    with open(target + ".tmp", "w") as f:
        json.dump({"format": FORMAT, **manifest}, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(target + ".tmp", target)


def read_manifest(path: str) -> dict:
    try:
        with open(os.path.join(path, MANIFEST)) as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise SnapshotError(f"no snapshot at {path!r} (no {MANIFEST}: missing, or never finished)") from None
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"the snapshot's {MANIFEST} at {path!r} is unreadable: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise SnapshotError(f"snapshot format {manifest.get('format')!r} at {path!r}; this version reads {FORMAT}")
    return manifest


def check_shard(path: str, n: int, expected: dict) -> None:
    """The shard file is whole: its SHA-256 is the manifest's."""
    digest = hashlib.sha256()
    try:
        with open(os.path.join(path, shard_file(n)), "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise SnapshotError(f"shard {n}'s file of the snapshot at {path!r}: {exc}") from None
    if digest.hexdigest() != expected.get("sha256"):
        raise SnapshotError(f"shard {n}'s file of the snapshot at {path!r} is damaged (checksum differs)")


def read_shard(path: str, n: int) -> Iterator[bytes]:
    with open(os.path.join(path, shard_file(n)), "rb") as raw:
        with zstandard.ZstdDecompressor().stream_reader(raw) as stream:
            while True:
                head = stream.read(_LEN.size)
                if not head:
                    return
                if len(head) != _LEN.size:
                    raise SnapshotError(f"shard {n}'s file of the snapshot at {path!r} ends mid-record")
                (size,) = _LEN.unpack(head)
                payload = stream.read(size)
                if len(payload) != size:
                    raise SnapshotError(f"shard {n}'s file of the snapshot at {path!r} ends mid-record")
                yield payload
