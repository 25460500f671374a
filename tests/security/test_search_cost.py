"""What a `search` may cost: the outside attack sent ~120 one-letter words (256 characters),
each a prefix FTS expands over every user's texts. The bounds are on what the store is asked
(at most 8 words, one-letter words only as a whole query, each word once) and on the query's
work (a budget, past which the search is `bad_frame` "search too broad")."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Collection, Iterator
from pathlib import Path

import pytest

from chatd.domain.actors import Actor
from chatd.domain.errors import Rejection
from chatd.domain.rules import Rules
from chatd.hub.local import LocalHub
from chatd.service import ChatService, Done
from chatd.store.base import Stored
from chatd.store.sqlite import SEARCH_BUDGET, SqliteStore
from chatd.views import SEARCH_MAX_WORDS
from protocol.codes import ErrorCode
from protocol.frames import Results
from tests.e2e.harness import ServerProcess, connect, module_server, token, uid

pytestmark = pytest.mark.timeout(60)

# The attack's query: 128 one-letter words, cut to the 256 characters a query may have.
_RND = random.Random(12)
ATTACK = " ".join(_RND.choice("абвгдежзиклмнопрст") for _ in range(128))[:256]
NINE = "куртка размер доставка возврат пункт заказ брак фото чек"


class Recording(SqliteStore):
    """The real store, noting the words of every search it is asked."""

    def __init__(self, path: Path, search_budget: int = SEARCH_BUDGET) -> None:
        super().__init__(path, search_budget=search_budget)
        self.asked: list[list[str]] = []

    async def search(
        self,
        key: str,
        words: list[str],
        chat: str | None,
        limit: int,
        hide_kinds: Collection[str] = (),
    ) -> list[Stored]:
        self.asked.append(list(words))
        return await super().search(key, words, chat, limit, hide_kinds)


BUYER = Actor(role="buyer", id="u1", name="Анна")
OPERATOR = Actor(role="seller", id="op1", name="Олег", shop="s1")
LONELY = Actor(role="buyer", id="nobody", name="Никто")


async def service_on(store: Recording) -> ChatService:
    await store.open()
    service = ChatService(store, LocalHub(), Rules())
    opened = await service.open_chat(BUYER, "s1", None)
    assert isinstance(opened, Done)
    for text in ("Куртка порвалась", "к сожалению брак", "жду ответа"):
        assert isinstance(await service.send(BUYER, opened.chat, text, [], None), Done)
    return service


@pytest.fixture
async def recorded(tmp_path: Path) -> AsyncIterator[tuple[ChatService, Recording]]:
    store = Recording(tmp_path / "search.db")
    service = await service_on(store)
    try:
        yield service, store
    finally:
        await store.close()


def texts(answer: Results | Rejection) -> list[str | None]:
    assert isinstance(answer, Results), answer
    return [e.text for e in answer.events]


async def test_the_attacks_query_never_reaches_the_store(
    recorded: tuple[ChatService, Recording],
) -> None:
    service, store = recorded
    for actor in (BUYER, OPERATOR, LONELY):
        assert texts(await service.views.search(actor, ATTACK, None)) == []
    assert store.asked == []


async def test_one_letter_words_count_only_as_the_whole_query(
    recorded: tuple[ChatService, Recording],
) -> None:
    service, store = recorded
    assert texts(await service.views.search(BUYER, "а куртк", None)) == ["Куртка порвалась"]
    assert texts(await service.views.search(BUYER, "к", None)) == [
        "к сожалению брак",
        "Куртка порвалась",
    ]
    assert texts(await service.views.search(BUYER, "куртк куртк, КУРТК", None)) == [
        "Куртка порвалась"
    ]
    assert store.asked == [["куртк"], ["к"], ["куртк"]]


async def test_more_than_the_most_words_is_refused_before_the_store(
    recorded: tuple[ChatService, Recording],
) -> None:
    service, store = recorded
    assert len(NINE.split()) == SEARCH_MAX_WORDS + 1
    refused = await service.views.search(OPERATOR, NINE, None)
    assert isinstance(refused, Rejection) and refused.code is ErrorCode.BAD_FRAME
    assert refused.message.startswith("search too broad")
    eight = " ".join(NINE.split()[:SEARCH_MAX_WORDS])
    assert texts(await service.views.search(OPERATOR, eight, None)) == []
    assert store.asked == [eight.split()]


async def test_a_search_past_its_budget_is_a_clear_bad_frame(tmp_path: Path) -> None:
    store = Recording(tmp_path / "budget.db", search_budget=1)
    service = await service_on(store)
    try:
        refused = await service.views.search(OPERATOR, "к", None)
    finally:
        await store.close()
    assert isinstance(refused, Rejection) and refused.code is ErrorCode.BAD_FRAME
    assert refused.message.startswith("search too broad")


# ---- on the wire ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with module_server(tmp_path_factory, "search-cost") as process:
        yield process


async def test_search_bounds_on_the_wire(srv: ServerProcess) -> None:
    buyer, shop = uid("buyer"), uid("shop")
    async with (
        connect(srv, token("buyer", buyer)) as client,
        connect(srv, token("buyer", uid("lonely"))) as lonely,
    ):
        chat = (await client.request({"type": "open", "seller": shop}))["chat"]
        await client.request({"type": "send", "chat": chat, "text": "Куртка порвалась"})

        attack = await client.request({"type": "search", "q": ATTACK})
        assert (attack["type"], attack["events"]) == ("results", [])
        nine = await client.request({"type": "search", "q": NINE})
        assert (nine["type"], nine["code"]) == ("error", "bad_frame"), nine
        assert nine["message"].startswith("search too broad")
        found = await client.request({"type": "search", "q": "а куртка"})
        assert [e["text"] for e in found["events"]] == ["Куртка порвалась"]
        nothing = await lonely.request({"type": "search", "q": "к"})
        assert (nothing["type"], nothing["events"]) == ("results", [])
