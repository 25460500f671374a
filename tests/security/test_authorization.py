"""The authorization matrix: every client frame, from every role, on chats of its own, of
another buyer and of another shop, with valid, expired and forged tokens.

What must hold (docs/protocol.md sections 2, 3 and 9):
- with a valid token, a frame on a chat that is not the user's is `not_found` (or `forbidden`
  when the role may never send that frame), answered exactly as for an id that names nothing,
  and it reads and writes nothing: the chat's log and claims are as they were, and the user
  receives no event of it;
- on the user's own chat, the role decides: what the role may do is done, what it may not is
  `forbidden`;
- with an expired or forged token nothing is done at all: `unauthorized`, close 4001, even
  for a frame sent right behind the `hello`;
- a token that expires closes every live socket of that user with 4001.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.e2e.harness import (
    SECRET,
    ServerProcess,
    connect,
    module_server,
    token,
    uid,
    without_session,
)
from tests.security.world import (
    CHATS,
    PRICE,
    ROLES,
    SYSTEM,
    Role,
    World,
    asker,
    bad_tokens,
    build_world,
    fill,
    signed,
    snapshot,
)

pytestmark = [
    pytest.mark.timeout(120),
    # The HS512 forgery is made with the server's (short for SHA-512) secret on purpose.
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

FRAMES: dict[str, dict[str, Any]] = {
    "open": {"type": "open", "seller": "{shop}", "order": "{order}"},
    "send": {"type": "send", "chat": "{chat}", "text": "Чужое сообщение"},
    "send_nonce": {"type": "send", "chat": "{chat}", "text": "Ещё одно", "nonce": "n-1"},
    "read": {"type": "read", "chat": "{chat}", "seq": 2},
    "history": {"type": "history", "chat": "{chat}"},
    "history_before": {"type": "history", "chat": "{chat}", "before": 3, "limit": 1},
    "search": {"type": "search", "q": "Сообщение", "chat": "{chat}"},
    "attachments": {"type": "attachments", "chat": "{chat}"},
    "return.request": {"type": "return.request", "chat": "{chat}", "order": "{order}"},
    "return.initiate": {"type": "return.initiate", "chat": "{chat}", "order": "{order}"},
    "return.approve": {
        "type": "return.approve",
        "claim": "{claim}",
        "mode": "no_return",
        "amount": PRICE,
    },
    "return.reject": {"type": "return.reject", "claim": "{claim}"},
    "return.dispute": {"type": "return.dispute", "claim": "{claim}"},
    "return.resolve": {"type": "return.resolve", "claim": "{claim}", "decision": "reject"},
    "return.resolve_approve": {
        "type": "return.resolve",
        "claim": "{claim}",
        "decision": "approve",
        "mode": "no_return",
    },
    # The operator's day: the shop's own work, which only the shop may do.
    "assign": {"type": "assign", "chat": "{chat}", "operator": None},
    "note": {"type": "note", "chat": "{chat}", "text": "Чужая заметка"},
    "note_nonce": {"type": "note", "chat": "{chat}", "text": "Ещё заметка", "nonce": "n-2"},
    # Typing: relayed to the other side, never stored; no answer when it passes.
    "typing": {"type": "typing", "chat": "{chat}"},
}
# Frames that name no chat: their answers must hold nothing of chats not the user's.
LISTS: dict[str, dict[str, Any]] = {
    "chats": {"type": "chats", "limit": 100},
    "search_everywhere": {"type": "search", "q": "Сообщение"},
    "ping": {"type": "ping"},
}

OK = "ok"  # the frame is carried out: an ack, a page, or no answer for `read` and `typing`
# What each role gets on a chat it may see, in the world of tests/security/world.py (every
# claim requested; D's claim disputed).
OWN: dict[str, dict[str, set[str]]] = {
    "buyer": {
        "open": {"ack"},
        "send": {"ack"},
        "send_nonce": {"ack"},
        "read": {OK},
        "history": {"history"},
        "history_before": {"history"},
        "search": {"results"},
        "attachments": {"attachments"},
        "return.request": {"return_already_requested"},
        "return.initiate": {"forbidden"},
        "return.approve": {"forbidden"},
        "return.reject": {"forbidden"},
        "return.dispute": {"conflict"},
        "return.resolve": {"forbidden"},
        "return.resolve_approve": {"forbidden"},
        "assign": {"forbidden"},
        "note": {"forbidden"},
        "note_nonce": {"forbidden"},
        "typing": {OK},
    },
    "seller": {
        "open": {"forbidden"},
        "send": {"ack"},
        "send_nonce": {"ack"},
        "read": {OK},
        "history": {"history"},
        "history_before": {"history"},
        "search": {"results"},
        "attachments": {"attachments"},
        "return.request": {"forbidden"},
        "return.initiate": {"conflict", "return_already_requested"},
        "return.approve": {"ack"},
        "return.reject": {"ack"},
        "return.dispute": {"forbidden"},
        "return.resolve": {"forbidden"},
        "return.resolve_approve": {"forbidden"},
        "assign": {"ack"},
        "note": {"ack"},
        "note_nonce": {"ack"},
        "typing": {OK},
    },
    "manager": {
        "open": {"forbidden"},
        "send": {"forbidden"},
        "send_nonce": {"forbidden"},
        "read": {"forbidden"},
        "history": {"history"},
        "history_before": {"history"},
        "search": {"results"},
        "attachments": {"attachments"},
        "return.request": {"forbidden"},
        "return.initiate": {"forbidden"},
        "return.approve": {"forbidden"},
        "return.reject": {"forbidden"},
        "return.dispute": {"forbidden"},
        "return.resolve": {"ack"},
        "return.resolve_approve": {"ack"},
        "assign": {"forbidden"},
        "note": {"forbidden"},
        "note_nonce": {"forbidden"},
        "typing": {"forbidden"},
    },
}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with module_server(tmp_path_factory, "authz") as process:
        yield process


def outcome(answer: dict[str, Any] | None) -> str:
    if answer is None:
        return OK
    if answer["type"] == "error":
        return str(answer["code"])
    return str(answer["type"])


def without_id(answer: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if answer is None else {k: v for k, v in answer.items() if k != "id"}


def role_may_never(role: str, frame: str) -> bool:
    return OWN[role][frame] == {"forbidden"}


# ---- valid tokens ----------------------------------------------------------------------------


@pytest.mark.parametrize("frame_name", FRAMES)
@pytest.mark.parametrize("role_name", ROLES)
async def test_a_frame_reaches_only_the_chats_of_its_user(
    srv: ServerProcess, role_name: str, frame_name: str
) -> None:
    role = ROLES[role_name]
    world = await build_world(srv)
    before = await snapshot(srv, world)
    template = FRAMES[frame_name]
    mismatches: list[str] = []
    async with asker(srv, signed(role.claims_of(world))) as user:
        missing = await user.ask(fill(template, None))
        for label in CHATS:
            answer = await user.ask(fill(template, world.chats[label]))
            got = outcome(answer)
            if label in role.visible:
                if got not in OWN[role_name][frame_name]:
                    mismatches.append(f"own chat {label}: {got} ({answer})")
                continue
            allowed = (
                {"not_found", "forbidden"}
                if role_may_never(role_name, frame_name)
                else {"not_found"}
            )
            if got not in allowed:
                mismatches.append(f"chat {label} of another: {got} ({answer})")
            elif without_id(answer) != without_id(missing):
                mismatches.append(f"chat {label} of another answers unlike a missing id: {answer}")
        await user.settle()
        foreign_events = [e for e in user.events if e["chat"] not in _chat_ids(world, role)]
        foreign_reads = [r for r in user.reads if r["chat"] not in _chat_ids(world, role)]
        foreign_ephemeral = [e for e in user.ephemeral if e["chat"] not in _chat_ids(world, role)]
    assert mismatches == []
    assert foreign_events == [], "events of another's chat reached the user"
    assert foreign_reads == []
    assert foreign_ephemeral == []
    after = await snapshot(srv, world)
    for label in CHATS:
        if label not in role.visible:
            assert after[label] == before[label], f"chat {label} of another was written"


def _chat_ids(world: World, role: Role) -> set[str]:
    return {world.chats[label].chat for label in role.visible}


@pytest.mark.parametrize("list_name", LISTS)
@pytest.mark.parametrize("role_name", ROLES)
async def test_lists_and_searches_hold_only_the_users_own_chats(
    srv: ServerProcess, role_name: str, list_name: str
) -> None:
    role = ROLES[role_name]
    world = await build_world(srv)
    mine = _chat_ids(world, role)
    others = {c.chat for c in world.chats.values()} - mine
    async with asker(srv, signed(role.claims_of(world))) as user:
        answer = await user.ask(LISTS[list_name])
    assert answer is not None
    if answer["type"] == "chats":
        listed = {c["chat"] for c in answer["chats"]}
        assert listed & others == set(), answer
        assert mine <= listed
    elif answer["type"] == "results":
        found = {e["chat"] for e in answer["events"]}
        assert found & others == set(), answer
        assert found & mine, answer
    else:
        assert answer["type"] == "pong"


@pytest.mark.parametrize("role_name", ROLES)
async def test_a_second_hello_never_changes_who_the_socket_is(
    srv: ServerProcess, role_name: str
) -> None:
    role = ROLES[role_name]
    world = await build_world(srv)
    hidden = next(label for label in CHATS if label not in role.visible)
    owner = world.chats[hidden].buyer
    async with asker(srv, signed(role.claims_of(world))) as user:
        again = await user.ask({"type": "hello", "token": token("buyer", owner)})
        assert outcome(again) == "bad_frame", again
        page = await user.ask({"type": "history", "chat": world.chats[hidden].chat})
        assert outcome(page) == "not_found", page


# ---- expired and forged tokens -------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_world(srv: ServerProcess) -> World:
    return asyncio.run(build_world(srv))


async def hello_then(srv: ServerProcess, tok: str, frame: dict[str, Any]) -> list[Any]:
    """Sends `hello` and `frame` back to back; every frame the server sent, then its close
    code."""
    received: list[Any] = []
    async with websockets.connect(srv.url, subprotocols=["chatd.v1.json"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "hello", "token": tok, "id": "h"}))
        await ws.send(json.dumps({**frame, "id": "f"}))
        received = await _until_closed(ws)
    return received


async def _until_closed(ws: ClientConnection) -> list[Any]:
    frames: list[Any] = []
    try:
        while True:
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
    except websockets.ConnectionClosed:
        frames.append(ws.close_code)
    return frames


@pytest.mark.parametrize(
    "kind",
    [
        "expired",
        "expired_by_one_second",
        "other_secret",
        "alg_none",
        "payload_swapped",
        "signature_cut",
        "hs512_same_secret",
    ],
)
@pytest.mark.parametrize("role_name", [*ROLES, "system"])
async def test_an_expired_or_forged_token_does_nothing_at_all(
    srv: ServerProcess, shared_world: World, role_name: str, kind: str
) -> None:
    role = ROLES.get(role_name, SYSTEM)
    world = shared_world
    before = await snapshot(srv, world)
    bad = bad_tokens(role.claims_of(world))[kind]
    for frame_name, template in {**FRAMES, **LISTS}.items():
        for label in ("A", "D"):
            got = await hello_then(srv, bad, fill(template, world.chats[label]))
            assert [without_session(frame) for frame in got[:-1]] == [
                {"type": "error", "code": "unauthorized", "id": "h", "message": got[0]["message"]}
            ], (frame_name, got)
            assert got[-1] == 4001, (frame_name, got)
    assert await snapshot(srv, world) == before


async def test_the_system_role_does_nothing_over_a_socket_even_with_a_valid_token(
    srv: ServerProcess, shared_world: World
) -> None:
    before = await snapshot(srv, shared_world)
    valid = signed(SYSTEM.claims_of(shared_world))
    for template in {**FRAMES, **LISTS}.values():
        got = await hello_then(srv, valid, fill(template, shared_world.chats["A"]))
        assert [g if isinstance(g, int) else g["code"] for g in got] == ["unauthorized", 4001]
    assert await snapshot(srv, shared_world) == before


# ---- tokens that expire on live sockets -------------------------------------------------


@pytest.mark.timeout(60)
async def test_an_expiring_token_closes_every_live_socket_of_every_role_with_4001(
    srv: ServerProcess,
) -> None:
    world = await build_world(srv)
    ttl = 2.5
    started = time.monotonic()
    async with contextlib.AsyncExitStack() as stack:
        sockets = []
        for role in ROLES.values():
            for _ in range(2):
                tok = signed(role.claims_of(world), ttl=ttl)
                sockets.append((role, await stack.enter_async_context(connect(srv, tok))))
        for role, client in sockets:
            pong = await client.request({"type": "ping"})
            assert pong["type"] == "pong", (role.role, pong)
        for role, client in sockets:
            await asyncio.wait_for(client.closed.wait(), ttl + 5)
            assert client.close_code == 4001, role.role
    assert time.monotonic() - started < ttl + 5


@pytest.mark.timeout(60)
async def test_frames_sent_across_the_expiry_of_a_token_are_never_done_after_it(
    srv: ServerProcess,
) -> None:
    """A socket that keeps writing while its token runs out: what the server did, it did
    before the expiry; the writer learns about the end by 4001."""
    buyer, shop = uid("buyer"), uid("shop")
    async with connect(srv, token("buyer", buyer)) as owner:
        chat = (await owner.request({"type": "open", "seller": shop}))["chat"]
    exp = int(time.time()) + 2
    tok = jwt.encode({"sub": buyer, "role": "buyer", "name": "b", "exp": exp}, SECRET)
    async with websockets.connect(srv.url) as ws:
        await ws.send(json.dumps({"type": "hello", "token": tok}))
        assert json.loads(await ws.recv())["type"] == "welcome"
        # Answers (acks, and rate_limited past the burst) are read, so the close is too.
        reader = asyncio.create_task(_until_closed(ws))
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                stamp = f"{time.time():.6f}"
                await ws.send(json.dumps({"type": "send", "chat": chat, "text": stamp}))
                await asyncio.sleep(0.01)
        answers = await reader
        assert answers[-1] == 4001, answers[-3:]
    async with connect(srv, token("buyer", buyer)) as owner:
        texts: list[str] = []
        before = None
        while True:
            frame: dict[str, Any] = {"type": "history", "chat": chat, "limit": 100}
            if before is not None:
                frame["before"] = before
            page = await owner.request(frame)
            texts = [e["text"] for e in page["events"] if e["kind"] == "message"] + texts
            if not page["more"]:
                break
            before = page["events"][0]["seq"]
    assert texts, "nothing was written before the expiry"
    assert max(float(t) for t in texts) < exp, "a frame sent after the expiry was done"
