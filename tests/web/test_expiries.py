"""`Expiries`: sockets closed with 4001 when their token expires, by one timer for all."""

from __future__ import annotations

import asyncio
import time

from chatd.web.expiries import Expiries
from protocol.codes import CloseCode


class Socket:
    def __init__(self, name: str) -> None:
        self.name = name
        self.closed: list[tuple[int, str, float]] = []

    def close(self, code: int, reason: str = "") -> None:
        self.closed.append((code, reason, time.time()))


async def test_each_socket_is_closed_with_4001_when_its_token_expires() -> None:
    expiries = Expiries()
    now = time.time()
    # Moments apart, and two sockets sharing one, as tokens of one second do.
    sockets = {Socket(f"s{n}"): now + 0.2 + 0.3 * n for n in range(4)}
    sockets[Socket("s1 too")] = now + 0.5
    for socket, expires_at in sockets.items():
        expiries.add(socket, expires_at)

    await asyncio.sleep(1.5)

    for socket, expires_at in sockets.items():
        ((code, reason, at),) = socket.closed
        assert (code, reason) == (CloseCode.UNAUTHORIZED, "token expired")
        # Never before the moment (a frame may still be carried out until then), and not
        # later than the loop's timers allow.
        assert expires_at <= at < expires_at + 0.5, socket.name
    assert len(expiries) == 0


async def test_a_socket_gone_before_its_token_expires_is_not_closed_and_not_kept() -> None:
    expiries = Expiries()
    gone, stays = Socket("gone"), Socket("stays")
    expires_at = time.time() + 0.3
    expiries.add(gone, expires_at)
    expiries.add(stays, expires_at)
    expiries.remove(gone)
    expiries.remove(gone)  # twice does nothing
    assert len(expiries) == 1

    await asyncio.sleep(0.6)

    assert gone.closed == []
    assert [code for code, _, _ in stays.closed] == [CloseCode.UNAUTHORIZED]
    assert len(expiries) == 0


async def test_an_earlier_expiry_added_later_is_not_kept_waiting_for_a_later_one() -> None:
    expiries = Expiries()
    late, early = Socket("late"), Socket("early")
    now = time.time()
    expiries.add(late, now + 60)
    expiries.add(early, now + 0.2)

    await asyncio.sleep(0.6)

    assert len(early.closed) == 1
    assert late.closed == []
    assert len(expiries) == 1
    expiries.remove(late)


async def test_a_second_whose_sockets_left_takes_a_socket_again() -> None:
    # A client reconnecting with the same token comes back to the second its socket left.
    expiries = Expiries()
    first, again, later = Socket("first"), Socket("again"), Socket("later")
    now = time.time()
    expiries.add(first, now + 0.3)
    expiries.add(later, now + 30)
    expiries.remove(first)
    expiries.add(again, now + 0.3)

    await asyncio.sleep(0.6)

    assert first.closed == []
    assert len(again.closed) == 1
    assert later.closed == []
    expiries.remove(later)


async def test_a_failing_close_does_not_keep_the_others_open() -> None:
    class Broken(Socket):
        def close(self, code: int, reason: str = "") -> None:
            raise RuntimeError("the peer went away")

    expiries = Expiries()
    broken, fine = Broken("broken"), Socket("fine")
    expires_at = time.time() + 0.2
    expiries.add(broken, expires_at)
    expiries.add(fine, expires_at)

    await asyncio.sleep(0.5)

    assert len(fine.closed) == 1
    assert len(expiries) == 0


async def test_an_already_expired_token_closes_its_socket_at_once() -> None:
    expiries = Expiries()
    socket = Socket("old")
    expiries.add(socket, time.time() - 5)

    await asyncio.sleep(0.05)

    assert len(socket.closed) == 1


async def test_a_key_that_never_expires_is_not_kept() -> None:
    # An API key's socket: its identity expires at infinity, and ends only when revoked.
    expiries = Expiries()
    socket = Socket("key")
    expiries.add(socket, float("inf"))
    assert len(expiries) == 0
    expiries.remove(socket)

    await asyncio.sleep(0.05)

    assert socket.closed == []
