"""A buyer asks a shop a question; an operator of the shop, iterating its events, answers.

CHATD_SECRET=... python chatd/client/examples/quickstart.py
"""

from __future__ import annotations

import asyncio
import os
import uuid

from chatd.client import connect, mint


async def main(url: str, secret: str) -> None:
    run = uuid.uuid4().hex[:6]
    shop = f"kunchenko-{run}"
    buyer_token = mint(secret, role="buyer", sub=f"svetlana-{run}", name="Светлана")
    shop_token = mint(secret, role="seller", sub=f"anna-{run}", name="Анна", seller=shop)

    async with connect(url, shop_token) as operator, connect(url, buyer_token) as buyer:
        opened = await buyer.open(shop)  # the buyer's chat with the shop: ack.chat
        await buyer.send(opened.chat, "Добрый день! Кардиган сильно садится после стирки?")

        async for event in operator.events():
            print(f"shop sees #{event.seq} {event.kind}: {event.text}")
            if event.kind == "message" and event.author.role == "buyer":
                await operator.send(event.chat, "Стирайте при 30 градусах, размер сохранится.")
                break

        async for event in buyer.events():
            if event.kind == "message" and event.author.role == "seller":
                operator_name = event.author.operator.name if event.author.operator else "?"
                print(f"buyer sees the answer of {operator_name}: {event.text}")
                await buyer.read(event.chat, event.seq)
                break


if __name__ == "__main__":
    asyncio.run(
        main(os.environ.get("CHATD_URL", "ws://127.0.0.1:8000/ws"), os.environ["CHATD_SECRET"])
    )
