"""The status of a bulk operation, typed. The JSON (API answers, MongoDB checkpoints)
carries the plain strings: an operation dict always holds `status.value`."""

from __future__ import annotations

from enum import Enum


class OperationStatus(str, Enum):
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
    {OperationStatus.INDEXING, OperationStatus.PERSISTING})
TERMINAL: frozenset[OperationStatus] = frozenset(
    {OperationStatus.COMPLETED, OperationStatus.PARTIALLY_COMPLETED, OperationStatus.FAILED})
ACTIVE_VALUES: tuple[str, ...] = tuple(sorted(s.value for s in ACTIVE))  # for MongoDB queries
TERMINAL_VALUES: tuple[str, ...] = tuple(sorted(s.value for s in TERMINAL))


class Readiness(str, Enum):
    """What GET /readyz says (its `state`), for whoever waits for the service: a client
    never needs to read the reason's text to know what to do."""

    READY = "ready"
    DEGRADED = "degraded"  # up, but some index record is unreadable: the others are served
    MONGO_DOWN = "mongo_down"
    STARTING = "starting"  # actors or replicas not answering yet, persistence failing for now

    def __str__(self) -> str:
        return self.value
