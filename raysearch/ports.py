"""Choosing TCP ports that stay free until they are bound.

A port found free by binding port 0 comes from the kernel's ephemeral range, the range it
also draws the local port of every outgoing connection from. A service picks its ports
(MongoDB's, HAProxy's stats and metrics, Serve's fallback proxy) seconds before the
process that binds them starts, while Ray's start opens hundreds of connections; one of
them taking a chosen port made that start fail ("Address already in use"), and a test
that restarted a crashed service on its port waited out its 900 s for a service that had
exited at once. So ports are drawn at random below the ephemeral range, where the kernel
never assigns one by itself, and checked free by binding them.
"""

from __future__ import annotations

import errno
import random
import socket
import time

# Where to draw from when the ephemeral range leaves room below it (Linux's default is
# 32768-60999): from 20000, above Ray's own defaults (its workers bind ports in 10002-19999,
# and `ray start` refuses a port given for another component inside that range).
FIRST_CHOSEN = 20000
RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for the local ports of outgoing connections."""
    try:
        with open(RANGE_FILE) as f:
            low, high = (int(x) for x in f.read().split())
        return low, high
    except (OSError, ValueError):  # not Linux: IANA's dynamic range
        return 49152, 65535


def bindable(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a listening socket could bind `host:port` now (SO_REUSEADDR, as servers set
    it: a port whose old connections linger in TIME_WAIT counts as free). OSError for any
    other reason it cannot (an address not of this host, a port needing privileges)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


# Ports this process has chosen or was told are spoken for: a port chosen is free only
# until its process binds it, so without this a second choice made before that bind (the
# MongoDB server's, HAProxy's) could return the same port. CI saw it once: HAProxy could
# not bind the service's own port, which something chosen after it had taken.
_spoken_for: set[int] = set()


def reserve(port: int) -> None:
    """Never hand out `port` from `free_port` in this process (a port a server of ours is
    about to bind, e.g. the service's own, chosen by its operator)."""
    _spoken_for.add(port)


def spoken_for() -> frozenset[int]:
    """The ports this process chose or reserved."""
    return frozenset(_spoken_for)


def free_port(host: str = "127.0.0.1") -> int:
    """A free port outside the ephemeral range (see the module's doc), never one this
    process chose or reserved before; an ephemeral one if that range leaves no room."""
    low, high = ephemeral_range()
    pools = [range(FIRST_CHOSEN, low), range(high + 1, 65536)]
    pool = max(pools, key=len)
    if len(pool) >= 1000:
        for _ in range(200):
            port = random.choice(pool)
            if port in _spoken_for:
                continue
            try:
                if bindable(port, host):
                    _spoken_for.add(port)
                    return port
            except OSError:  # e.g. a port the system reserves: try another
                continue
    with socket.socket() as s:
        s.bind((host, 0))
        port = s.getsockname()[1]
    _spoken_for.add(port)
    return port


def wait_bindable(port: int, host: str, timeout_s: float) -> bool:
    """Whether `host:port` becomes bindable within `timeout_s` (a port held a moment longer
    by a process still exiting); False if it is still taken then."""
    deadline = time.monotonic() + timeout_s
    while True:
        if bindable(port, _bind_host(host)):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


def _bind_host(host: str) -> str:
    """The address to test for `host` as a server's setting names it."""
    return "" if host in ("0.0.0.0", "::", "") else host

