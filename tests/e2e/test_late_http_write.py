"""A message sent over HTTP whose commit waits past the answer deadline is answered 503
`unavailable`, and when the commit happens after all, the chat's live sockets still get the
event: the request's work was cancelled at the deadline, the group commit wrote the message
anyway, and nothing published it, so both sides' sockets skipped that seq for good
(`python -m chatd.proof.long_run` found it)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import httpx
import pytest

from chatd.web.answer_deadline import ANSWER_DEADLINE
from tests.e2e.harness import ServerProcess, connect, token, uid

pytestmark = pytest.mark.timeout(60)


async def test_a_write_answered_too_late_still_reaches_the_live_sockets(tmp_path: Path) -> None:
    server = ServerProcess(db=tmp_path / "chatd.db")
    await asyncio.to_thread(server.start)
    buyer, shop = uid("buyer"), uid("shop")
    buyer_token = token("buyer", buyer)
    try:
        async with (
            connect(server, buyer_token) as buyer_socket,
            connect(server, token("seller", uid("op"), seller=shop)) as shop_socket,
        ):
            opened = await buyer_socket.request({"type": "open", "seller": shop})
            chat = opened["chat"]
            await shop_socket.wait_events(1)
            url = f"{server.http}/api/v1/chats/{chat}/messages"
            headers = {"Authorization": f"Bearer {buyer_token}"}
            async with httpx.AsyncClient(timeout=30) as http:
                # Another process holds the database's write lock past the deadline.
                other = sqlite3.connect(server.db, timeout=30)
                other.execute("BEGIN IMMEDIATE")
                try:
                    late = asyncio.create_task(
                        http.post(
                            url,
                            json={"text": "пока база занята"},
                            headers={**headers, "Idempotency-Key": "k-1"},
                        )
                    )
                    await asyncio.sleep(ANSWER_DEADLINE + 1.5)
                finally:
                    other.execute("ROLLBACK")
                    other.close()
                answered = await late
                assert answered.status_code == 503, answered.text
                assert answered.json()["error"]["code"] == "unavailable"

                # The write was committed after all: both sides hear it, in its place.
                for socket in (buyer_socket, shop_socket):
                    events = await socket.wait_events(2)
                    assert [e["seq"] for e in events] == [1, 2], events
                    assert events[1]["text"] == "пока база занята"
                # A retry with its key writes nothing new; the next message follows it.
                again = await http.post(
                    url,
                    json={"text": "пока база занята"},
                    headers={**headers, "Idempotency-Key": "k-1"},
                )
                assert again.status_code == 200 and again.json()["seq"] == 2, again.text
                after = await http.post(
                    url, json={"text": "дальше"}, headers={**headers, "Idempotency-Key": "k-2"}
                )
                assert after.status_code == 201, after.text
                for socket in (buyer_socket, shop_socket):
                    events = await socket.wait_events(3)
                    assert [e["seq"] for e in events] == [1, 2, 3], events
    finally:
        await asyncio.to_thread(server.stop)
