"""The 14 days of a return through the chat, over real sockets: calendar days from the day of
purchase in the marketplace's time zone (Europe/Moscow), not 14 × 24 hours from the goods'
arrival. The server runs on the real clock, so each purchase time is placed just either side
of a Moscow midnight relative to now."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.harness import ServerProcess, module_server
from tests.e2e.returns_scene import Scene, assert_error, rfc3339, scene_of

pytestmark = pytest.mark.timeout(60)

MOSCOW = ZoneInfo("Europe/Moscow")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with module_server(tmp_path_factory, "returns-calendar") as process:
        yield process


@pytest.fixture
async def scene(srv: ServerProcess) -> AsyncIterator[Scene]:
    async with scene_of(srv, buyer_name="Тимур") as made:
        yield made


def moscow_midnight(days_ago: int) -> datetime:
    """The midnight that began the Moscow day `days_ago` days before today, in UTC."""
    today = datetime.now(MOSCOW).date()
    return datetime.combine(today - timedelta(days=days_ago), time(0), MOSCOW).astimezone(UTC)


async def request_for(scene: Scene, purchased: datetime, received: datetime) -> dict[str, object]:
    order = scene.order(purchased_at=rfc3339(purchased), received_at=rfc3339(received))
    await scene.open(order)
    return await scene.request_return(order)


async def test_on_the_fourteenth_calendar_day_the_return_opens(scene: Scene) -> None:
    # Bought a minute before the midnight that began the day 13 days ago: the 14th calendar
    # day after that day began at today's midnight, though only 13 days and a part have
    # passed by the clock (14 × 24 hours would refuse it).
    purchased = moscow_midnight(13) - timedelta(minutes=1)
    reply = await request_for(scene, purchased, purchased + timedelta(days=2))
    assert reply["type"] == "ack" and reply.get("claim"), reply


async def test_on_the_thirteenth_calendar_day_it_waits_until_midnight(scene: Scene) -> None:
    # Bought a minute after the midnight that began the day 13 days ago: the return opens at
    # the coming midnight, in Moscow.
    purchased = moscow_midnight(13) + timedelta(minutes=1)
    reply = await request_for(scene, purchased, purchased + timedelta(days=2))
    assert_error(reply, "return_too_early")
    opens_at = reply["details"]["opens_at"]  # type: ignore[index]
    assert datetime.fromisoformat(opens_at) == moscow_midnight(-1)
    assert "«Проверка товара»" in str(reply["message"])


async def test_the_portals_example_goods_received_yesterday_bought_long_ago(
    scene: Scene,
) -> None:
    # The portal's own example: received 17.08.2023, asked 18.08.2023, bought earlier.
    received = datetime.now(UTC) - timedelta(days=1)
    reply = await request_for(scene, received - timedelta(days=20), received)
    assert reply["type"] == "ack" and reply.get("claim"), reply
