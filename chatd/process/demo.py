"""Demo data from the seller portal's own help page: one shop, its buyers, their orders,
chats and returns (Люда, Тимур with the skirt and the screen film, the Warm jeans,
Светлана and Владислав). With a file store, the skirt's card has a product photo, drawn
here rather than shipped as a file."""

from __future__ import annotations

import logging
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import msgspec

from chatd.domain import commands as cmd
from chatd.domain.actors import Actor
from chatd.domain.errors import Rejection
from chatd.domain.ids import chat_id, claim_id
from chatd.domain.rules import Rules
from chatd.files import FileRefused, FileStore
from chatd.hub.local import LocalHub
from chatd.routing import MARKETPLACE
from chatd.service import ChatService, Done
from chatd.store.base import EventStore
from protocol.events import Money, OrderCard, Party

log = logging.getLogger(__name__)

SHOP = Party(id="shop-kunchenko", name="ИП Кунченко С.А.")
OPERATOR = Actor(role="seller", id="op-anna", name="Анна", shop=SHOP.id)
SECOND_OPERATOR = Actor(role="seller", id="op-oleg", name="Олег", shop=SHOP.id)
MANAGER = Actor(role="manager", id="mgr-1", name="Менеджер Wildberries")
SYSTEM = Actor(role="system", id="marketplace", name="Wildberries")

LYUDA = Party(id="buyer-lyuda", name="Люда")
TIMUR = Party(id="buyer-timur", name="Тимур")
SVETLANA = Party(id="buyer-svetlana", name="Светлана")
VLADISLAV = Party(id="buyer-vladislav", name="Владислав")
IVANOV = Party(id="buyer-ivanov", name="Иванов Иван Иванович")
MARINA = Party(id="buyer-marina", name="Марина")
BUYERS = (LYUDA, TIMUR, SVETLANA, VLADISLAV, IVANOV, MARINA)


def _at(text: str) -> datetime:
    """A Moscow wall-clock time of the portal's examples, as UTC."""
    moscow = datetime.fromisoformat(text + "+03:00")
    return moscow.astimezone(UTC)


def buyer_actor(party: Party) -> Actor:
    return Actor(role="buyer", id=party.id, name=party.name)


SKIRT = OrderCard(
    non_returnable=False,
    id="order-skirt",
    buyer=TIMUR,
    seller=SHOP,
    article="140158860",
    name="Юбка короткая плиссе со складками",
    brand="SK - Line",
    size="S",
    color="черный",
    price=Money(value=118600, currency="RUB"),
    purchased_at=_at("2023-08-10T12:00:00"),
    received_at=_at("2023-08-17T12:00:00"),
)
FILM = OrderCard(
    non_returnable=False,
    id="order-film",
    buyer=TIMUR,
    seller=SHOP,
    article="170589710",
    name="защитная пленка для Galaxy S23",
    brand="Samsung",
    price=Money(value=2753, currency="BYN"),
    purchased_at=_at("2023-08-10T12:00:00"),
    received_at=_at("2023-08-17T12:00:00"),
)
JEANS = OrderCard(
    non_returnable=False,
    id="order-jeans",
    buyer=IVANOV,
    seller=SHOP,
    article="1234567895",
    name="Джинсы женские суперслим",
    brand="Warm",
    size="42",
    color="синий",
    price=Money(value=349000, currency="RUB"),
    purchased_at=_at("2022-09-05T12:00:00"),
    received_at=_at("2022-09-12T12:00:00"),
)
SHIPPING = OrderCard(
    non_returnable=False,
    id="order-lyuda",
    buyer=LYUDA,
    seller=SHOP,
    article="98765432",
    name="Платье летнее",
    brand="SK - Line",
    size="M",
    color="белый",
    price=Money(value=249900, currency="RUB"),
    purchased_at=_at("2023-03-01T09:00:00"),
)
CARDIGAN = OrderCard(
    non_returnable=False,
    id="order-svetlana",
    buyer=SVETLANA,
    seller=SHOP,
    article="155432871",
    name="Кардиган оверсайз",
    brand="SK - Line",
    size="L",
    color="бежевый",
    price=Money(value=289000, currency="RUB"),
    purchased_at=_at("2023-02-20T10:00:00"),
    received_at=_at("2023-02-24T15:00:00"),
)
BELT = OrderCard(
    id="order-vladislav",
    buyer=VLADISLAV,
    seller=SHOP,
    article="161203554",
    name="Ремень кожаный",
    brand="SK - Line",
    color="коричневый",
    price=Money(value=99000, currency="RUB"),
    purchased_at=_at("2023-02-10T10:00:00"),
    received_at=_at("2023-02-14T18:00:00"),
    non_returnable=False,
)
SCARF = OrderCard(
    id="order-marina",
    buyer=MARINA,
    seller=SHOP,
    article="149870021",
    name="Платок шёлковый",
    brand="SK - Line",
    color="изумрудный",
    price=Money(value=159000, currency="RUB"),
    purchased_at=_at("2023-02-25T09:00:00"),
    received_at=_at("2023-03-01T13:00:00"),
    non_returnable=False,
)
ORDERS = (SKIRT, FILM, JEANS, SHIPPING, CARDIGAN, BELT, SCARF)
# The steps `load_demo` reports: one per order, one per buyer's chat, and the read marks.
STEPS = len(ORDERS) + len(BUYERS) + 1


def _yesterday_at(hour: int, minute: int, rules: Rules) -> datetime:
    """Yesterday at this time of day in the marketplace's time zone, in UTC."""
    today = datetime.now(rules.timezone).date()
    local = datetime.combine(today - timedelta(days=1), time(hour, minute), rules.timezone)
    return local.astimezone(UTC)


@dataclass
class _Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


class DemoError(Exception):
    """A demo step was refused: the demo and the rules disagree."""


def _check(outcome: Done | Rejection, step: str) -> Done:
    if isinstance(outcome, Rejection):
        raise DemoError(f"{step}: {outcome.code.value}: {outcome.message}")
    return outcome


def _png(width: int, height: int, rows: list[bytes]) -> bytes:
    """A PNG of 8-bit RGB `rows` (each `width` pixels of three bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in rows)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def skirt_photo(width: int = 112, height: int = 144) -> bytes:
    """The pleated black skirt on a pale background (twice the card's thumbnail, for sharp
    screens): a waistband, then a flare whose pleats are lighter stripes."""
    background, cloth, fold, band = (
        b"\xf4\xf1\xf7",
        b"\x26\x24\x2b",
        b"\x4a\x47\x52",
        b"\x10\x10\x14",
    )
    middle = width / 2
    top, waist, hem = height * 0.18, height * 0.25, height * 0.86
    rows: list[bytes] = []
    for y in range(height):
        row = bytearray(background * width)
        if top <= y < hem:
            # The flare widens from 40% of the picture at the waist to 84% at the hem.
            spread = 0.0 if y < waist else (y - waist) / (hem - waist)
            half = width * (0.20 + 0.22 * spread)
            for x in range(int(middle - half), int(middle + half)):
                if y < waist:
                    colour = band
                else:
                    # Pleats fan out from the waist: a stripe every 1/7 of the width there.
                    at = (x - middle) / half
                    colour = fold if abs(at * 7 - round(at * 7)) < 0.12 else cloth
                row[3 * x : 3 * x + 3] = colour
        rows.append(bytes(row))
    return _png(width, height, rows)


async def _with_photo(files: FileStore, card: OrderCard, photo: bytes, name: str) -> OrderCard:
    """`card` naming `photo`, uploaded as the marketplace's."""
    saved = await files.save(photo, name, MARKETPLACE)
    if isinstance(saved, FileRefused):
        raise DemoError(f"the photo of {card.id}: {saved.message}")
    return msgspec.structs.replace(card, photo=saved.id)


async def load_demo(
    store: EventStore,
    rules: Rules,
    files: FileStore | None = None,
    step: Callable[[], None] | None = None,
) -> bool:
    """Loads the demo into an empty log; False (and nothing written) when it has events.
    With `files`, the skirt's order names a product photo uploaded there. `step` is called
    after each of the `STEPS` steps (a progress bar)."""
    if await store.last_position() > 0:
        return False

    def tick() -> None:
        if step is not None:
            step()

    clock = _Clock(_at("2023-01-01T00:00:00"))
    service = ChatService(store, LocalHub(), rules, clock=clock, files=files)

    async def say(actor: Actor, buyer: Party, when: str, text: str) -> None:
        clock.now = _at(when)
        chat = chat_id(buyer.id, SHOP.id)
        _check(await service.send(actor, chat, text, [], None), text)

    async def open_chat(buyer: Party, when: str, order: str | None = None) -> None:
        clock.now = _at(when)
        _check(await service.open_chat(buyer_actor(buyer), SHOP.id, order), "open")

    orders = list(ORDERS)
    if files is not None:
        orders[orders.index(SKIRT)] = await _with_photo(files, SKIRT, skirt_photo(), "skirt.png")
    for order in orders:
        clock.now = order.purchased_at
        await service.register_order(SYSTEM, order)
        tick()

    await open_chat(SVETLANA, "2023-02-27T11:20:00", CARDIGAN.id)
    await say(
        buyer_actor(SVETLANA),
        SVETLANA,
        "2023-02-27T11:20:00",
        "Добрый день! Подскажите, кардиган сильно садится после стирки?",
    )
    await say(
        OPERATOR,
        SVETLANA,
        "2023-02-27T12:05:00",
        "Здравствуйте! Стирайте при 30 градусах, тогда размер сохранится.",
    )
    await say(buyer_actor(SVETLANA), SVETLANA, "2023-02-27T12:10:00", "Спасибо большое!")

    tick()
    await open_chat(VLADISLAV, "2023-03-01T18:40:00")
    await say(
        buyer_actor(VLADISLAV),
        VLADISLAV,
        "2023-03-01T18:40:00",
        "Здравствуйте, будет ли юбка плиссе в размере XS?",
    )
    await say(
        SECOND_OPERATOR,
        VLADISLAV,
        "2023-03-01T19:02:00",
        "Здравствуйте! Поставка ожидается на следующей неделе.",
    )

    tick()
    await open_chat(LYUDA, "2023-03-04T10:01:00", SHIPPING.id)
    await say(buyer_actor(LYUDA), LYUDA, "2023-03-04T10:01:00", "Здравствуйте, товар не отправили.")

    tick()
    await open_chat(IVANOV, "2023-03-05T15:45:00", JEANS.id)
    await say(
        buyer_actor(IVANOV),
        IVANOV,
        "2023-03-05T15:45:00",
        "Здравствуйте! Возместите деньги, джинсы бракованные.",
    )

    tick()
    # Марина: a refusal she disputed, waiting for the marketplace's manager.
    await open_chat(MARINA, "2023-03-16T09:30:00", SCARF.id)
    await say(
        buyer_actor(MARINA),
        MARINA,
        "2023-03-16T09:30:00",
        "Здравствуйте! Платок пришёл с затяжками, прикладываю описание.",
    )
    marina_chat = chat_id(MARINA.id, SHOP.id)
    clock.now = _at("2023-03-16T09:32:00")
    _check(await service.request_return(buyer_actor(MARINA), marina_chat, SCARF.id), "scarf")
    clock.now = _at("2023-03-16T14:05:00")
    scarf_claim = claim_id(SCARF.id)
    _check(
        await service.reject_return(cmd.RejectReturn(actor=SECOND_OPERATOR, claim=scarf_claim)),
        "scarf refusal",
    )
    clock.now = _at("2023-03-17T08:15:00")
    dispute = cmd.DisputeReturn(actor=buyer_actor(MARINA), claim=scarf_claim)
    _check(await service.dispute_return(dispute), "scarf dispute")

    tick()
    # Тимур: the screen film refused (the portal's refusal example), the skirt awaiting the
    # shop's decision with the approve and refuse buttons.
    await open_chat(TIMUR, "2023-09-01T12:38:00", FILM.id)
    timur_chat = chat_id(TIMUR.id, SHOP.id)
    clock.now = _at("2023-09-01T12:38:00")
    _check(await service.request_return(buyer_actor(TIMUR), timur_chat, FILM.id), "film request")
    clock.now = _at("2023-09-01T12:59:00")
    _check(
        await service.reject_return(cmd.RejectReturn(actor=OPERATOR, claim=claim_id(FILM.id))),
        "film refusal",
    )
    # The skirt's request came yesterday: a request waits for the shop's decision only for the
    # claim deadline (10 days by default), after which the server hands it to the managers
    # (chatd.deadline_timers), so a waiting claim cannot keep the story's 2023 date.
    clock.now = _yesterday_at(17, 3, rules)
    _check(await service.request_return(buyer_actor(TIMUR), timur_chat, SKIRT.id), "skirt request")
    tick()
    # What each side had read: the shop its own answers and what came before them.
    marks = [
        (SVETLANA, "seller", 3), (SVETLANA, "buyer", 3), (VLADISLAV, "seller", 3),
        (VLADISLAV, "buyer", 3), (TIMUR, "seller", 3), (TIMUR, "buyer", 3),
        (MARINA, "seller", 4), (MARINA, "buyer", 5),
    ]  # fmt: skip
    for party, side, seq in marks:
        reader = OPERATOR if side == "seller" else buyer_actor(party)
        rejection = await service.mark_read(reader, chat_id(party.id, SHOP.id), seq)
        if rejection is not None:
            raise DemoError(f"read mark: {rejection.message}")
    tick()
    log.info("demo data loaded: %d orders, %d chats", len(ORDERS), len(BUYERS))
    return True
