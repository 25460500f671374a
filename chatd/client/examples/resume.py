"""A client that stops and comes back later loses nothing: it keeps `chat.cursor` (the cursor
of the last event it handled) and passes it as `since`. Within one run the SDK does the same
by itself across drops, restarts of the server and 1013 closes.

    CHATD_SECRET=... python chatd/client/examples/resume.py
"""

from __future__ import annotations

import asyncio
import os
import uuid

from chatd.client import connect, mint, minter
from protocol.codes import ErrorCode
from protocol.frames import Error, EventFrame, Synced


async def main(url: str, secret: str) -> None:
    run = uuid.uuid4().hex[:6]
    shop = f"kunchenko-{run}"
    # A token provider: when the server closes with 4001 (expired), a fresh token is minted.
    operator_tokens = minter(secret, role="seller", sub=f"anna-{run}", name="Анна", seller=shop)
    buyer_token = mint(secret, role="buyer", sub=f"lyuda-{run}", name="Люда")

    async with connect(url, operator_tokens(), token_provider=operator_tokens) as operator:
        async with connect(url, buyer_token) as buyer:
            chat = (await buyer.open(shop)).chat
        async for event in operator.events():
            if event.chat == chat:
                break
        saved = operator.cursor  # store it wherever the program keeps its state

    # While the operator is away, the buyer writes.
    async with connect(url, buyer_token) as buyer:
        await buyer.send(chat, "Здравствуйте, товар не отправили.")
        await buyer.send(chat, "Подскажите, когда ждать?")

    async with connect(url, operator_tokens(), since=saved, token_provider=operator_tokens) as op:
        missed = []
        async for frame in op.frames():
            if isinstance(frame, EventFrame):
                missed.append(frame.text)
            elif isinstance(frame, Error) and frame.code == ErrorCode.BAD_CURSOR:
                print("the server did not know the cursor: reload the chat list")
                return
            elif isinstance(frame, Synced):
                break  # the replay is over: live events follow
        print("missed while away:", missed)


if __name__ == "__main__":
    asyncio.run(
        main(os.environ.get("CHATD_URL", "ws://127.0.0.1:8000/ws"), os.environ["CHATD_SECRET"])
    )
