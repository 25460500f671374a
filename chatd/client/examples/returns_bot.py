"""A shop's bot that approves every return request in full, with the goods sent back through
a pickup point; the marketplace registers the order and reports the goods' way back.

    CHATD_SECRET=... python chatd/client/examples/returns_bot.py
"""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime, timedelta

from chatd.client import ChatClient, ChatError, connect, event_data, mint
from chatd.client.http import HttpApi, http_base
from protocol.codes import ErrorCode
from protocol.events import Money, OrderCard, Party, ReturnRequested


async def approve_returns(shop: ChatClient, stop_after: int) -> None:
    """Approves return requests as they come; stops after `stop_after` approvals."""
    approved = 0
    async for event in shop.events():
        if event.kind != "return.requested":
            continue
        data = event_data(event)
        assert isinstance(data, ReturnRequested)
        try:
            await shop.approve_return(data.claim, "pvz", data.order.price)
        except ChatError as error:
            if error.code != ErrorCode.CONFLICT:  # another operator was faster
                raise
        approved += 1
        if approved == stop_after:
            return


async def main(url: str, secret: str) -> None:
    run = uuid.uuid4().hex[:6]
    buyer_id, shop_id = f"timur-{run}", f"kunchenko-{run}"
    received = datetime.now(UTC) - timedelta(days=20)
    order = OrderCard(
        id=f"skirt-{run}",
        buyer=Party(id=buyer_id, name="Тимур"),
        seller=Party(id=shop_id, name="ИП Кунченко С.А."),
        article="140158860",
        name="Юбка короткая плиссе со складками",
        brand="SK - Line",
        size="S",
        price=Money(value=118600, currency="RUB"),
        purchased_at=received - timedelta(days=7),
        received_at=received,
        non_returnable=False,
    )
    system = mint(secret, role="system", sub="marketplace", name="Wildberries")
    bot_token = mint(secret, role="seller", sub=f"bot-{run}", name="Бот", seller=shop_id)
    buyer_token = mint(secret, role="buyer", sub=buyer_id, name="Тимур")

    async with (
        HttpApi(http_base(url), system) as marketplace,
        connect(url, bot_token) as bot,
        connect(url, buyer_token) as buyer,
    ):
        await marketplace.register_order(order)
        bot_task = asyncio.create_task(approve_returns(bot, stop_after=1))

        chat = (await buyer.open(shop_id, order.id)).chat
        claim = (await buyer.request_return(chat, order.id)).claim
        print(f"claim {claim} requested")
        async for event in buyer.events():
            if event.kind == "return.approved":
                print(f"buyer sees: {event.text}")
                break
        await bot_task

        for step in ("handed_in", "arrived"):
            await marketplace.logistics(order.id, step)
        async for event in buyer.events():
            print(f"buyer sees: {event.text}")
            if event.kind == "refund.issued":
                break

    async with HttpApi(http_base(url), buyer_token) as api:
        print("the buyer's balance:", await api.balance())


if __name__ == "__main__":
    asyncio.run(
        main(os.environ.get("CHATD_URL", "ws://127.0.0.1:8000/ws"), os.environ["CHATD_SECRET"])
    )
