"""A connection's life without sockets: frames in, decisions out (`chatd.web.lifecycle`)."""

from __future__ import annotations

import json

import msgspec
import pytest

from chatd.web.lifecycle import (
    TRANSITIONS,
    Answer,
    CheckHello,
    Lifecycle,
    Phase,
    Refusal,
    Request,
    TransitionError,
)
from chatd.web.ratelimit import TokenBucket
from protocol import frames as f
from protocol.codec import codec_for
from protocol.codes import CloseCode

JSON = codec_for("chatd.v1.json")
MSGPACK = codec_for("chatd.v1.msgpack")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def life(rate: float = 20.0, burst: float = 40.0, clock: Clock | None = None) -> Lifecycle:
    return Lifecycle(JSON, TokenBucket(rate, burst, clock or Clock()))


def frame(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def live(lc: Lifecycle, user_bucket: TokenBucket | None = None) -> Lifecycle:
    lc.accept(user_bucket or TokenBucket(1000.0, 1000.0, Clock()))
    lc.synced(replayed_upto=7)
    return lc


def test_the_first_frame_must_be_hello() -> None:
    lc = life()
    received = lc.receive(frame(type="ping", id="p1"))
    assert isinstance(received, Refusal)
    assert received.frame.code == "unauthorized" and received.frame.id == "p1"
    assert received.code == CloseCode.UNAUTHORIZED
    assert lc.phase is Phase.CLOSING and lc.close_code == CloseCode.UNAUTHORIZED


def test_garbage_first_is_refused_like_a_wrong_frame() -> None:
    lc = life()
    received = lc.receive(b"\xff{not json")
    assert isinstance(received, Refusal) and received.code == CloseCode.UNAUTHORIZED


def test_hello_is_handed_to_the_shell_to_check_its_token() -> None:
    lc = life()
    received = lc.receive(frame(type="hello", token="t", since="c1", id="h"))
    assert isinstance(received, CheckHello)
    assert received.hello == f.Hello(token="t", since="c1", id="h")
    assert lc.phase is Phase.AWAITING_HELLO


def test_a_bad_token_or_no_hello_in_time_closes_with_4001() -> None:
    lc = life()
    refusal = lc.refuse("token expired", "h")
    assert (refusal.frame.code, refusal.frame.message, refusal.frame.id) == (
        "unauthorized",
        "token expired",
        "h",
    )
    assert lc.close_code == CloseCode.UNAUTHORIZED


def test_too_many_connections_is_rate_limited_then_1008() -> None:
    lc = life()
    refusal = lc.too_many(32, "h")
    assert refusal.frame.code == "rate_limited" and "32" in refusal.frame.message
    assert refusal.code == CloseCode.POLICY and lc.closing


def test_frames_are_read_only_after_the_replay() -> None:
    lc = life()
    lc.accept(TokenBucket(10.0, 10.0, Clock()))
    assert lc.phase is Phase.REPLAYING
    with pytest.raises(TransitionError):
        lc.receive(frame(type="ping"))
    lc.synced(replayed_upto=42)
    assert lc.live and lc.replayed_upto == 42
    assert lc.receive(frame(type="ping", id="x")) == Request(f.Ping(id="x"))


def test_events_sent_by_the_replay_are_skipped_live() -> None:
    lc = live(life())
    assert lc.sent_already(7) and lc.sent_already(1)
    assert not lc.sent_already(8)
    assert not lc.sent_already(None)  # frames without a log position always go out


@pytest.mark.parametrize("codec", [JSON, MSGPACK], ids=["json", "msgpack"])
def test_a_request_decodes_in_either_subprotocol(codec: object) -> None:
    lc = Lifecycle(codec, TokenBucket(20.0, 40.0, Clock()))  # type: ignore[arg-type]
    live(lc)
    send = {"type": "send", "chat": "c1", "text": "привет", "id": "s1"}
    data = json.dumps(send).encode() if codec is JSON else msgspec.msgpack.encode(send)
    received = lc.receive(data)
    assert isinstance(received, Request)
    assert received.frame == f.Send(chat="c1", text="привет", id="s1")


def test_a_bad_frame_is_answered_and_only_the_first_is_marked_for_the_log() -> None:
    lc = live(life())
    first = lc.receive(frame(type="send", chat=5, id="b1"))
    second = lc.receive(b"{")
    assert isinstance(first, Answer) and isinstance(second, Answer)
    assert first.frame.code == second.frame.code == "bad_frame"
    assert first.frame.id == "b1" and second.frame.id is None
    assert first.first_bad_frame and not second.first_bad_frame
    assert lc.live  # a bad frame never closes the connection


def test_a_second_hello_is_a_bad_frame() -> None:
    lc = live(life())
    received = lc.receive(frame(type="hello", token="t", id="again"))
    assert isinstance(received, Answer)
    assert (received.frame.code, received.frame.id) == ("bad_frame", "again")


def test_the_rate_limit_answers_with_the_wait_and_spends_nothing() -> None:
    clock = Clock()
    lc = live(life(rate=2.0, burst=2.0, clock=clock))
    assert isinstance(lc.receive(frame(type="ping")), Request)
    assert isinstance(lc.receive(frame(type="ping")), Request)
    limited = lc.receive(frame(type="ping", id="p3"))
    assert isinstance(limited, Answer) and limited.frame.code == "rate_limited"
    assert limited.frame.id == "p3"
    assert limited.frame.details == {"retry_after": 0.5}
    # Refused frames spend nothing: half a second later exactly one more passes.
    clock.now += 0.5
    assert isinstance(lc.receive(frame(type="ping")), Request)
    assert isinstance(lc.receive(frame(type="ping")), Answer)


def test_a_users_shared_budget_limits_each_of_its_connections() -> None:
    clock = Clock()
    shared = TokenBucket(1.0, 1.0, clock)
    one, two = live(life(clock=clock), shared), live(life(clock=clock), shared)
    assert isinstance(one.receive(frame(type="ping")), Request)
    limited = two.receive(frame(type="ping"))
    assert isinstance(limited, Answer) and limited.frame.code == "rate_limited"


def test_closing_keeps_the_first_code_and_ignores_what_follows() -> None:
    lc = live(life())
    assert lc.close(CloseCode.TRY_AGAIN_LATER, "send queue full")
    assert not lc.close(CloseCode.NORMAL)
    assert (lc.close_code, lc.close_reason) == (CloseCode.TRY_AGAIN_LATER, "send queue full")
    assert lc.receive(frame(type="ping")) is None


def test_every_phase_can_close_and_only_the_table_moves() -> None:
    closable = {phase for (phase, event) in TRANSITIONS if event == "close"}
    assert closable == {Phase.AWAITING_HELLO, Phase.REPLAYING, Phase.LIVE}
    lc = life()
    with pytest.raises(TransitionError):
        lc.synced(0)  # no replay before hello
    lc.close(CloseCode.GOING_AWAY)
    with pytest.raises(TransitionError):
        lc.accept(TokenBucket(1.0, 1.0, Clock()))
