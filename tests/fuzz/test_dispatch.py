"""Decode and dispatch under hypothesis: frames valid and broken, about real chats and claims
of the demo log, from buyers, operators, a manager and a stranger, in both subprotocols, through
the real app in this process. Every frame gets an answer of the contract and never
`internal`; what cannot be decoded gets exactly one `bad_frame`; no socket is closed; the log
stays whole; and the socket layer writes one line about bad frames per connection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.codec import MSGPACK
from tests.fuzz.corpus import Frame, corpus_entries, frames_from_log, world_of
from tests.fuzz.inprocess import PEERS, InProcessServer, check_outcome
from tests.fuzz.strategies import (
    broken_frames,
    damaged_bytes,
    encode,
    mutate_bytes,
    valid_frames,
)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    with InProcessServer(Path(tmp_path_factory.mktemp("dispatch"))) as server:
        yield server


@pytest.fixture(scope="module")
def log_frames(harness: InProcessServer) -> list[Frame]:
    return frames_from_log(harness.db)


def feed_and_check(harness: InProcessServer, peer: int, payload: bytes) -> None:
    outcome = harness.feed(peer, payload)
    check_outcome(outcome, payload, PEERS[peer % len(PEERS)].subprotocol)


def test_the_corpus_from_the_demo_log_covers_every_writing_frame(log_frames: list[Frame]) -> None:
    kinds = {frame["type"] for frame in log_frames}
    assert {"open", "send", "read", "history", "chats", "search", "attachments"} <= kinds
    assert {"return.request", "return.reject", "return.dispute", "return.resolve"} <= kinds


def test_every_corpus_frame_on_every_connection_gets_a_contract_answer(
    harness: InProcessServer, log_frames: list[Frame]
) -> None:
    errors_before = len(harness.log.errors())
    for entry in corpus_entries(log_frames):
        feed_and_check(harness, entry[0], entry[1:])
    for peer in range(len(PEERS)):
        for frame in log_frames:
            feed_and_check(harness, peer, encode(frame, PEERS[peer].subprotocol))
    harness.check_store()
    assert harness.log.errors()[errors_before:] == []


@st.composite
def inputs(draw: st.DrawFn, log_frames: list[Frame]) -> tuple[int, bytes]:
    """(connection, payload): a corpus frame, a valid or broken frame about the demo's
    chats, or damaged bytes."""
    peer = draw(st.integers(min_value=0, max_value=len(PEERS) - 1))
    subprotocol = PEERS[peer].subprotocol
    world = world_of(log_frames)
    how = draw(st.sampled_from(["corpus", "mutated_corpus", "valid", "broken", "damaged"]))
    if how in ("corpus", "mutated_corpus"):
        payload = encode(draw(st.sampled_from(log_frames)), subprotocol)
        if how == "mutated_corpus":
            payload = mutate_bytes(payload, draw)
    elif how == "valid":
        payload = encode(draw(valid_frames(world)), subprotocol)
    elif how == "broken":
        payload = encode(draw(broken_frames(world)).frame, subprotocol)
    else:
        payload = draw(damaged_bytes(world, subprotocol))
    return peer, payload


def test_any_frame_from_anyone_gets_a_contract_answer_and_never_internal(
    harness: InProcessServer, log_frames: list[Frame]
) -> None:
    @settings(
        max_examples=600,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        peer, payload = data.draw(inputs(log_frames))
        feed_and_check(harness, peer, payload)

    errors_before = len(harness.log.errors())
    check()
    harness.check_store()
    assert harness.log.errors()[errors_before:] == []


def test_the_socket_layer_logs_one_bad_frame_line_per_connection(
    harness: InProcessServer,
) -> None:
    for n in range(300):
        for peer in range(len(PEERS)):
            feed_and_check(harness, peer, b"\xc1{" + str(n).encode())
    # Every connection of this harness has had bad frames by now, and said so once.
    assert harness.log.bad_frame_lines() == len(PEERS)


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "return.approve", "claim": "{claim}", "mode": "pvz",
         "amount": {"value": 2**63 - 1, "currency": "RUB"}},
        {"type": "return.approve", "claim": "{claim}", "mode": "no_return",
         "amount": {"value": -118600, "currency": "RUB"}},
        {"type": "send", "chat": "{chat}", "text": "\u0000" * 10},
        {"type": "send", "chat": "{chat}", "text": "a\u0000b"},
        {"type": "send", "chat": "{chat}", "text": " \u200b\u2028\ufeff "},
        {"type": "send", "chat": "{chat}", "text": "ж" * 16_000},
        {"type": "send", "chat": "{chat}", "text": "привет", "attachments": ["../../etc/passwd"]},
        {"type": "send", "chat": "{chat}", "text": "", "attachments": ["f" + "0" * 24] * 10},
        {"type": "search", "q": '"*" OR NEAR(a b) ^ - : {} () AND'},
        {"type": "search", "q": "\u0000"},
        {"type": "search", "q": "*"},
        {"type": "search", "q": "ё" * 256, "chat": "{chat}"},
        {"type": "history", "chat": "{chat}", "before": 2**53, "limit": 100},
        {"type": "read", "chat": "{chat}", "seq": 2**53},
        {"type": "read", "chat": "{chat}", "seq": 0},
        {"type": "chats", "before": "{log}.ffffffffffffffff"},
        {"type": "chats", "before": "{log}.-1"},
        {"type": "chats", "before": "{log}.0x10"},
        {"type": "chats", "before": "{log}." + "f" * 17},
        {"type": "chats", "before": "."},
        {"type": "open", "seller": "shop-kunchenko", "order": "order-skirt"},
        {"type": "open", "seller": "\u0000"},
        {"type": "return.request", "chat": "{chat}", "order": "order:order-skirt"},
        {"type": "return.initiate", "chat": "order:order-skirt", "order": "order-skirt"},
        {"type": "history", "chat": "order:order-skirt"},
        {"type": "send", "chat": "order:order-skirt", "text": "order streams are not chats"},
        {"type": "attachments", "chat": "order:order-film"},
        {"type": "return.resolve", "claim": "{claim}", "decision": "reject", "mode": "pvz"},
    ],
    ids=[
        "amount_int64_max", "amount_negative", "text_only_nul", "text_with_nul",
        "text_invisible_only", "text_16000", "attachment_path", "attachments_ten_missing",
        "search_fts_syntax", "search_nul", "search_star", "search_256_yo",
        "history_before_2_53", "read_seq_2_53", "read_seq_0", "chats_before_2_64",
        "chats_before_negative", "chats_before_0x", "chats_before_17_hex", "chats_before_dot",
        "open_existing", "open_nul_shop", "request_order_stream_as_order",
        "initiate_in_order_stream", "history_of_order_stream", "send_to_order_stream",
        "attachments_of_order_stream", "resolve_reject_with_mode",
    ],
)  # fmt: skip
def test_edge_values_that_decode_get_a_contract_answer_from_everyone(
    harness: InProcessServer, log_frames: list[Frame], frame: dict[str, Any]
) -> None:
    errors_before = len(harness.log.errors())
    world = world_of(log_frames)
    log_id = harness.app.service.store.log_id
    chats_with_claims = {fr["chat"] for fr in log_frames if fr["type"] == "return.request"}
    filled = {
        key: (
            value.replace("{chat}", sorted(chats_with_claims)[0])
            .replace("{claim}", world.claims[0])
            .replace("{log}", log_id)
            if isinstance(value, str)
            else value
        )
        for key, value in frame.items()
    }
    for peer in range(len(PEERS)):
        payload = encode({**filled, "id": "edge"}, PEERS[peer].subprotocol)
        outcome = harness.feed(peer, payload)
        check_outcome(outcome, payload, PEERS[peer].subprotocol)
        assert outcome.decoded, outcome
        for reply in outcome.replies:
            assert reply.get("id") == "edge", reply
    harness.check_store()
    assert harness.log.errors()[errors_before:] == []


def test_msgpack_connections_answer_in_binary_frames_only(harness: InProcessServer) -> None:
    # next_frame asserts the frame kind of every reply; here every peer speaks once more.
    for peer, spec in enumerate(PEERS):
        outcome = harness.feed(peer, encode({"type": "chats", "id": "k"}, spec.subprotocol))
        assert [r["type"] for r in outcome.replies] == ["chats"], (spec, outcome)
        assert spec.subprotocol != MSGPACK or spec.binary_frames
