"""The shops' canned replies in the store (chatd.store.base.TemplateStore): one contract class
every backend subclasses unchanged, beside those of tests/store/contract.py.

- a shop's templates are its own, listed by shortcut, kept as written;
- a shortcut names one template of a shop (another shop may have it too), and a shop keeps
  at most as many as it is allowed;
- the defaults go to a shop never seen, once, however many ask at once, and never again
  once the shop has listed or written its templates.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from chatd.store.base import EventStore, ShortcutTaken, TemplateRecord, TooManyTemplates
from tests.store.contract import T0, StoreFixtures


def template(
    shop: str, ident: str, shortcut: str, *, text: str = "Здравствуйте!", minutes: int = 0
) -> TemplateRecord:
    at = T0 + timedelta(minutes=minutes, microseconds=123_456)
    return TemplateRecord(
        id=ident,
        shop=shop,
        shortcut=shortcut,
        title=f"Шаблон {shortcut}",
        text=text,
        created_at=at,
        updated_at=at,
    )


class TemplateStoreContract(StoreFixtures):
    async def test_a_shop_lists_its_own_by_shortcut_as_they_were_kept(
        self, store: EventStore
    ) -> None:
        later = template("shop-a", "t1", "zeta", text="Текст «в кавычках»\nи вторая строка")
        sooner = template("shop-a", "t2", "alpha", minutes=5)
        foreign = template("shop-b", "t3", "beta")
        for record in (later, sooner, foreign):
            await store.create_template(record, 10)
        assert await store.templates_of_shop("shop-a") == [sooner, later]
        assert await store.templates_of_shop("shop-b") == [foreign]
        assert await store.templates_of_shop("shop-c") == []

    async def test_a_shortcut_names_one_template_of_a_shop(self, store: EventStore) -> None:
        first = template("shop-a", "t1", "hello")
        await store.create_template(first, 10)
        with pytest.raises(ShortcutTaken):
            await store.create_template(template("shop-a", "t2", "hello"), 10)
        await store.create_template(template("shop-b", "t3", "hello"), 10)
        other = template("shop-a", "t4", "bye")
        await store.create_template(other, 10)
        renamed = template("shop-a", "t4", "hello", minutes=9)
        with pytest.raises(ShortcutTaken):
            await store.update_template(renamed)
        assert await store.templates_of_shop("shop-a") == [other, first]

    async def test_a_shop_keeps_at_most_its_limit(self, store: EventStore) -> None:
        for n in range(3):
            await store.create_template(template("shop-a", f"t{n}", f"s{n}"), 3)
        with pytest.raises(TooManyTemplates):
            await store.create_template(template("shop-a", "t9", "s9"), 3)
        await store.create_template(template("shop-b", "t8", "s8"), 3)
        assert len(await store.templates_of_shop("shop-a")) == 3

    async def test_a_template_is_replaced_and_deleted_by_its_own_shop_only(
        self, store: EventStore
    ) -> None:
        kept = template("shop-a", "t1", "hello")
        await store.create_template(kept, 10)
        changed = TemplateRecord(
            id="t1",
            shop="shop-a",
            shortcut="hi",
            title="Другое",
            text="Новый текст",
            created_at=T0 + timedelta(days=1),  # not written: the template keeps its own
            updated_at=T0 + timedelta(hours=2),
        )
        foreign = TemplateRecord(
            id="t1",
            shop="shop-b",
            shortcut="x",
            title="Чужой",
            text="Чужой",
            created_at=T0,
            updated_at=T0,
        )
        assert await store.update_template(foreign) is None
        assert not await store.delete_template("shop-b", "t1")
        updated = await store.update_template(changed)
        assert updated == TemplateRecord(
            id="t1",
            shop="shop-a",
            shortcut="hi",
            title="Другое",
            text="Новый текст",
            created_at=kept.created_at,
            updated_at=changed.updated_at,
        )
        assert await store.templates_of_shop("shop-a") == [updated]
        assert await store.update_template(template("shop-a", "t-none", "x")) is None
        assert await store.delete_template("shop-a", "t1")
        assert not await store.delete_template("shop-a", "t1")
        assert await store.templates_of_shop("shop-a") == []

    async def test_the_defaults_go_to_a_shop_never_seen_and_once(self, store: EventStore) -> None:
        defaults = [template("shop-a", f"d{n}", f"default{n}") for n in range(3)]
        assert await store.seed_templates("shop-a", T0, defaults)
        assert not await store.seed_templates("shop-a", T0, defaults)
        assert await store.templates_of_shop("shop-a") == sorted(defaults, key=lambda t: t.shortcut)
        for record in defaults:
            assert await store.delete_template("shop-a", record.id)
        # Deleted all: they do not come back.
        assert not await store.seed_templates("shop-a", T0, defaults)
        assert await store.templates_of_shop("shop-a") == []

    async def test_a_shop_that_wrote_first_is_seen(self, store: EventStore) -> None:
        mine = template("shop-a", "t1", "mine")
        await store.create_template(mine, 10)
        assert not await store.seed_templates("shop-a", T0, [template("shop-a", "d1", "d")])
        assert await store.templates_of_shop("shop-a") == [mine]

    async def test_seeding_at_once_writes_the_defaults_once(self, store: EventStore) -> None:
        def defaults(n: int) -> list[TemplateRecord]:
            return [template("shop-a", f"d{n}-{k}", f"default{k}") for k in range(3)]

        seeded = await asyncio.gather(
            *(store.seed_templates("shop-a", T0, defaults(n)) for n in range(4))
        )
        assert sorted(seeded) == [False, False, False, True]
        assert len(await store.templates_of_shop("shop-a")) == 3
