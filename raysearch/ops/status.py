"""The status of a bulk operation, typed. The JSON (API answers, MongoDB checkpoints)
carries the plain strings: an operation dict always holds `status.value`."""

from __future__ import annotations

from enum import Enum


class OperationStatus(str, Enum):
    QUEUED = "queued"
    INDEXING = "indexing"
    PERSISTING = "persisting"
    COMPLETED = "completed"
    PARTIALLY_COMPLETED = "partially_completed"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def active(self) -> bool:
        return self in ACTIVE


ACTIVE: frozenset[OperationStatus] = frozenset(
    {OperationStatus.QUEUED, OperationStatus.INDEXING, OperationStatus.PERSISTING})
TERMINAL: frozenset[OperationStatus] = frozenset(
    {OperationStatus.COMPLETED, OperationStatus.PARTIALLY_COMPLETED, OperationStatus.FAILED})
ACTIVE_VALUES: tuple[str, ...] = tuple(sorted(s.value for s in ACTIVE))  # for MongoDB queries
TERMINAL_VALUES: tuple[str, ...] = tuple(sorted(s.value for s in TERMINAL))
