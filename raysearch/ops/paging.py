"""The opaque cursor of GET /bulk-operations pages (newest first: created_at desc, then id desc)."""

from __future__ import annotations

import base64
import json


def encode_cursor(created_at: float, op_id: str) -> str:
    raw = json.dumps([created_at, op_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """Raises ValueError on anything that is not a cursor made by encode_cursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, op_id = json.loads(raw)
    except Exception:
        raise ValueError(f"not a cursor of this listing: {cursor[:80]!r}") from None
    if not isinstance(created_at, (int, float)) or isinstance(created_at, bool) or not isinstance(op_id, str):
        raise ValueError(f"not a cursor of this listing: {cursor[:80]!r}")
    return float(created_at), op_id
