"""actors/wire.py over real sockets in this process (no Ray): calls and answers, the
caller's errors, a wrong token refused before anything is read, methods not served,
a server gone, calls in parallel, and a client moved to another event loop."""

from __future__ import annotations

import asyncio

import pytest

from raysearch.actors.wire import WireClient, WireServer, WireUnavailable


class Handler:
    def __init__(self):
        self.calls = []

    def __call__(self, method, args):
        self.calls.append(method)
        if method == "fail":
            raise KeyError(args[0])
        if method == "slow":
            import time

            time.sleep(0.05)
        return {"method": method, "args": args}


def _server():
    handler = Handler()
    return WireServer(handler, frozenset({"echo", "fail", "slow"}), "127.0.0.1"), handler


def test_calls_answers_and_errors():
    server, handler = _server()

    async def scenario():
        client = WireClient(server.address, server.token)
        assert await client.call("echo", 1, "two", b"3") == {"method": "echo", "args": (1, "two", b"3")}
        with pytest.raises(KeyError, match="missing"):  # the caller's own error, as raised
            await client.call("fail", "missing")
        with pytest.raises(WireUnavailable, match="not served"):
            await client.call("drop_everything")
        assert "drop_everything" not in handler.calls
        answers = await asyncio.gather(*[client.call("slow", i) for i in range(20)])  # one connection each
        assert [a["args"] for a in answers] == [(i,) for i in range(20)]
        assert not client.broken

    asyncio.run(scenario())
    server.close()


def test_a_wrong_token_is_refused_before_anything_is_read():
    server, handler = _server()

    async def scenario():
        intruder = WireClient(server.address, b"x" * 32)
        with pytest.raises(WireUnavailable):
            await intruder.call("echo", 1)
        assert handler.calls == [] and intruder.broken

    asyncio.run(scenario())
    server.close()


def test_a_server_gone_is_unavailable_and_a_new_loop_reconnects():
    server, _ = _server()
    client = WireClient(server.address, server.token)
    assert asyncio.run(client.call("echo", 1))["args"] == (1,)
    assert asyncio.run(client.call("echo", 2))["args"] == (2,)  # another loop: connects again
    server.close()

    async def after():
        with pytest.raises(WireUnavailable):
            for _ in range(3):  # the kept connection may still be open; a new one is refused
                await client.call("echo", 3)

    asyncio.run(after())
