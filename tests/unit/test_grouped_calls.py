"""actors/clients.py: a shard's query phases grouped under load (_Grouped), over a fake
actor handle (TEST ONLY: records calls, answers after an event; no Ray)."""

from __future__ import annotations

import asyncio

import pytest

from raysearch.actors.clients import _Grouped


class _Method:
    def __init__(self, owner, name):
        self.owner, self.name = owner, name

    def remote(self, *args):
        self.owner.calls.append((self.name, args))
        return self.owner.answer(self.name, args)


class FakeShard:
    """TEST ONLY: a ShardStore handle whose calls finish when `release` is set."""

    def __init__(self):
        self.calls: list = []
        self.release = asyncio.Event()
        self.fail_whole = None
        self.search = _Method(self, "search")
        self.search_many = _Method(self, "search_many")

    async def answer(self, name, args):
        await self.release.wait()
        if self.fail_whole is not None:
            raise self.fail_whole
        if name == "search":
            return {"plan": args[0]}
        return [ValueError(f"bad {plan}") if plan.startswith("bad") else {"plan": plan} for plan, _ in args[0]]


def test_a_lone_search_goes_out_at_once_and_others_wait_to_go_together():
    async def scenario():
        shard = FakeShard()
        grouped = _Grouped(shard, limit=1)
        first = asyncio.ensure_future(grouped.search("p0", 10))
        await asyncio.sleep(0)
        assert shard.calls == [("search", ("p0", 10))]
        rest = [asyncio.ensure_future(grouped.search(f"p{i}", 10)) for i in range(1, 5)]
        bad = asyncio.ensure_future(grouped.search("bad1", 10))
        gone = asyncio.ensure_future(grouped.search("gone", 10))
        await asyncio.sleep(0)
        gone.cancel()  # its client gave up while it waited
        await asyncio.sleep(0)
        assert len(shard.calls) == 1  # the others wait for the one in flight
        shard.release.set()
        assert (await first) == {"plan": "p0"}
        assert [await r for r in rest] == [{"plan": f"p{i}"} for i in range(1, 5)]
        with pytest.raises(ValueError, match="bad bad1"):  # its own error, to that search only
            await bad
        assert [name for name, _ in shard.calls] == ["search", "search_many"]
        assert [plan for plan, _ in shard.calls[1][1][0]] == ["p1", "p2", "p3", "p4", "bad1"]  # not the one given up
        assert grouped.in_flight == 0 and not grouped.waiting

    asyncio.run(scenario())


def test_a_failed_group_call_fails_each_search_in_it():
    async def scenario():
        shard = FakeShard()
        grouped = _Grouped(shard, limit=1)
        first = asyncio.ensure_future(grouped.search("p0", 10))
        await asyncio.sleep(0)
        rest = [asyncio.ensure_future(grouped.search(f"p{i}", 10)) for i in range(1, 3)]
        await asyncio.sleep(0)
        shard.fail_whole = RuntimeError("shard unavailable")
        shard.release.set()
        for waiting in [first, *rest]:
            with pytest.raises(RuntimeError, match="shard unavailable"):
                await waiting
        assert grouped.in_flight == 0

    asyncio.run(scenario())
