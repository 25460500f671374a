"""Webhooks on two nodes sharing a PostgreSQL log: one node at a time delivers to an endpoint
(a healthy receiver gets each event exactly once, past the lease's first expiry), and when
that node is killed the other takes the endpoint over and loses nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backends import fresh_database, require_redis
from tests.e2e.harness import ServerProcess, connect, token, uid
from tests.e2e.test_webhooks import (
    FAST,
    RETRIES,
    assert_once_each_in_order,
    create_webhook,
    open_chat,
    operator_of,
    say,
    until,
)
from tests.e2e.webhook_receiver import Receiver
from tests.multinode.cluster import Cluster

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    process = Receiver()
    process.start()
    try:
        yield process
    finally:
        process.stop()


async def test_one_node_delivers_and_the_other_takes_over_after_a_kill_9(
    tmp_path: Path, receiver: Receiver
) -> None:
    await require_redis()
    async with fresh_database() as dsn:
        cluster = Cluster(dsn, tmp_path)
        args = (*cluster.args(), *FAST, "--webhook-retries", RETRIES)
        a = ServerProcess(db=tmp_path / "a.db", extra_args=args)
        b = ServerProcess(db=tmp_path / "b.db", extra_args=args)
        try:
            await asyncio.to_thread(a.start)
            shop = uid("shop")
            made = create_webhook(a, operator_of(shop), receiver.url())
            assert made.status_code == 201, made.text
            secret = made.json()["secret"]
            buyer = token("buyer", uid("buyer"))
            async with connect(a, buyer) as on_a:
                chat = await open_chat(on_a, shop)
            await until(lambda: len(receiver.snapshot()) == 1)
            # Node a holds the endpoint; b starts beside it.
            await asyncio.to_thread(b.start)
            async with connect(b, buyer) as on_b:
                await say(on_b, chat, 3, "через b")
            await until(lambda: len(receiver.snapshot()) == 4)
            # Past a lease's first expiry (10 s): a renews it, so b never delivers too.
            await asyncio.sleep(11)
            async with connect(b, buyer) as on_b:
                await say(on_b, chat, 3, "позже")
            await until(lambda: len(receiver.snapshot()) == 7)
            await asyncio.sleep(0.5)
            assert len(receiver.snapshot()) == 7, "an event was sent twice with no failure"

            a.kill()
            async with connect(b, buyer) as on_b:
                await say(on_b, chat, 4, "после сбоя")
            # b takes the endpoint once a's lease runs out, and resumes from its cursor.
            await until(lambda: len({r.webhook_id for r in receiver.snapshot()}) == 11, 40)
            await asyncio.sleep(0.5)
            assert_once_each_in_order(receiver.snapshot(), secret, {chat: 11})
        finally:
            a.stop()
            b.stop()
