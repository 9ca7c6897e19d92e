"""A full disk under a shard's RocksDB (issue 24): a small filesystem (tmpfs) is mounted
where the index's shards live, and filled. Writes to that index then answer 507 naming
the cause, accepted batches wait (none fails), searches keep answering, and once space
is freed indexing resumes by itself: every acknowledged document is searchable and
verify passes. Mounting needs root; where the platform refuses, the test says so."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import debian_docs, wait_operation

INDEX = "disk-full"


def _fill(path: Path, leave_bytes: int) -> None:
    with open(path, "wb") as f:
        while os.statvfs(path.parent).f_bavail * os.statvfs(path.parent).f_frsize > leave_bytes + (1 << 20):
            f.write(b"\0" * (1 << 20))
            f.flush()
        try:
            while os.statvfs(path.parent).f_bavail * os.statvfs(path.parent).f_frsize > leave_bytes:
                f.write(b"\0" * 4096)
                f.flush()
        except OSError:
            pass


def test_a_full_disk_refuses_writes_keeps_searching_and_resumes(http, service):
    mount = Path(service.settings.data_dir) / "shards" / INDEX
    mount.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", str(mount)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here (root and CAP_SYS_ADMIN needed): {r.stderr.strip()}")
    filler = mount / "filler"
    try:
        assert http.put(f"/indexes/{INDEX}", json={"shards": 1}).status_code == 201
        first = debian_docs(0, 200)
        assert wait_operation(http, http.post(f"/bulk-indexing/{INDEX}", json=first).json()["operation_id"])[
            "status"] == "completed"
        _fill(filler, leave_bytes=256 << 10)
        more = debian_docs(200, 3200)
        r = http.post(f"/bulk-indexing/{INDEX}", json=more)
        assert r.status_code == 202, r.text  # accepted: the intake log is in MongoDB, not on this disk
        op = r.json()["operation_id"]
        deadline, early = time.time() + 120, []
        while time.time() < deadline:  # the shard hits the full disk; new writes are refused, naming it
            refused = http.post(f"/bulk-indexing/{INDEX}", json=[{"id": "late", "title": "late"}])
            if refused.status_code == 507:
                break
            if refused.status_code == 202:  # before the disk filled: accepted, and must arrive too
                early.append(refused.json()["operation_id"])
            time.sleep(0.5)
        assert refused.status_code == 507, refused.text
        assert refused.json()["error"]["type"] == "insufficient_storage" and "full" in refused.json()["error"][
            "reason"]
        assert refused.headers.get("retry-after")
        assert http.get(f"/bulk-operations/{op}").json()["batches"]["failed"] == 0  # waiting, not failed
        search = http.get(f"/indexes/{INDEX}/search", params={"q": "library", "size": 3})
        assert search.status_code == 200  # searches keep answering
        assert http.get(f"/indexes/{INDEX}/documents/{first[0]['id']}").status_code == 200
        filler.unlink()  # space freed: indexing resumes by itself
        final = wait_operation(http, op, 300)
        assert final["status"] == "completed", final
        late = http.post(f"/bulk-indexing/{INDEX}", json=[{"id": "late", "title": "late"}])
        assert late.status_code == 202, late.text  # the index takes writes again
        for other in early + [late.json()["operation_id"]]:
            assert wait_operation(http, other, 300)["status"] == "completed"
        total = http.get(f"/indexes/{INDEX}/search", params={"size": 0}).json()["total"]
        assert total == len({d["id"] for d in first + more} | {"late"})
        assert http.post(f"/indexes/{INDEX}/verify").json()["ok"]
    finally:
        filler.unlink(missing_ok=True)
        http.delete(f"/indexes/{INDEX}")
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
