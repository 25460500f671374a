"""Did every participant get every event of its chats once, as the log has it?

Each socket of a buyer is checked against the buyer's chats, each socket of an operator
against all of its shop's chats: every `seq` from 1 to the number of events the log has for
the chat must arrive exactly once, and the events must be the log's (kind, author role, and
the text of messages). On the way, each delivery to a socket other than the one that sent
the command yields a latency, from the command's due time.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from chatd.loadtest.histogram import Latencies
from chatd.loadtest.plan import Actor, ChatPlan, Share
from chatd.loadtest.results import Outcome
from chatd.loadtest.wire import Socket

# A key of an event's content: (kind, author role, hash of a message's text, else 0).
Content = tuple[str, str, int]


def content_of(kind: str, role: str, text: str | None) -> Content:
    return (kind, role, hash(text) if text is not None else 0)


@dataclass(eq=False, slots=True)
class Conn:
    """One socket of one actor, and the events it received, by the server's chat id."""

    actor: Actor
    socket: Socket | None = None
    received: dict[str, list[tuple[int, float, Content]]] = field(default_factory=dict)
    checked: bool = True


# (server chat, seq) -> (due time, the connection that sent the command, None for HTTP).
Appended = dict[tuple[str, int], tuple[float, Conn | None]]


def owned_chats(share: Share, conns: dict[Actor, list[Conn]]) -> list[tuple[Conn, list[ChatPlan]]]:
    """Every checked socket with the chats of the share it must see in full."""
    by_buyer: dict[str, list[ChatPlan]] = {}
    by_shop: dict[str, list[ChatPlan]] = {}
    for chat in share.chats:
        by_buyer.setdefault(chat.buyer, []).append(chat)
        by_shop.setdefault(chat.shop, []).append(chat)
    owned: list[tuple[Conn, list[ChatPlan]]] = []
    for actor, group in conns.items():
        if actor.role == "buyer":
            chats = by_buyer.get(actor.id, [])
        elif actor.role == "seller":
            chats = by_shop.get(actor.shop or "", [])
        else:
            continue
        owned.extend((conn, chats) for conn in group)
    return owned


def received_count(
    owned: list[tuple[Conn, list[ChatPlan]]], chat_ids: dict[str, str]
) -> tuple[int, int]:
    """(events received, events expected) over every checked socket."""
    got = expected = 0
    for conn, chats in owned:
        for chat in chats:
            expected += len(chat.expected)
            server = chat_ids.get(chat.chat)
            if server is not None:
                got += len(conn.received.get(server, ()))
    return got, expected


def check_chat(
    conn: Conn,
    chat: ChatPlan,
    chat_ids: dict[str, str],
    appended: Appended,
    start: float,
    outcome: Outcome,
    deliveries: Latencies,
) -> None:
    where = f"{conn.actor.role} {conn.actor.id}, chat {chat.chat}"
    server = chat_ids.get(chat.chat)
    if server is None:
        outcome.lost += len(chat.expected)
        outcome.example(f"{where}: never opened, {len(chat.expected)} events lost")
        return
    received = conn.received.get(server, [])
    outcome.deliveries += len(received)
    total = len(chat.expected)
    seen: dict[int, Content] = {}
    for seq, moment, content in received:
        if seq in seen or seq > total:
            outcome.doubled += 1
            outcome.example(f"{where}: seq {seq} again or beyond the log's {total} events")
            continue
        seen[seq] = content
        sent = appended.get((server, seq))
        if sent is not None and sent[1] is not conn:
            latency = moment - sent[0]
            deliveries.record(latency)
            outcome.timeline_at.append(sent[0] - start)
            outcome.timeline_latency.append(latency)
            outcome.last_delivery = max(outcome.last_delivery, moment - start)
    missing = total - len(seen)
    if missing:
        outcome.lost += missing
        outcome.example(f"{where}: {missing} of {total} events never arrived")
    wanted = Counter(content_of(e.kind, e.role, e.text) for e in chat.expected)
    differ = sum((wanted - Counter(seen.values())).values()) - missing
    if differ > 0:
        outcome.mismatched += differ
        outcome.example(f"{where}: {differ} events differ from the log")
