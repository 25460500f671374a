"""Deterministic ids: one chat per buyer and shop, one claim per order.

Deriving them from what makes them unique lets the store's unique (stream, seq) key settle
races: two `open`s of the same chat both try to append seq 1, and only one can.
"""

from __future__ import annotations

import hashlib


def _digest(*parts: str) -> str:
    joined = "\x1f".join(parts).encode()
    return hashlib.blake2b(joined, digest_size=10).hexdigest()


def chat_id(buyer: str, shop: str) -> str:
    return "c" + _digest("chat", buyer, shop)


def claim_id(order: str) -> str:
    return "r" + _digest("claim", order)


# The streams of orders, beside the chats' (`c...`): an order's registration is its own
# stream's first event.
ORDER_STREAM = "order:"


def order_stream(order: str) -> str:
    return ORDER_STREAM + order
