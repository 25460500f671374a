"""The in-process hub against the hub contract."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatd.hub.base import Hub
from chatd.hub.local import LocalHub
from chatd.store.base import EventStore
from chatd.store.sqlite import SqliteStore
from tests.hub.contract import HubContract, OpenHub


class TestLocalHub(HubContract):
    @pytest.fixture
    async def log(self, tmp_path: Path) -> AsyncIterator[EventStore]:
        store = SqliteStore(tmp_path / "log.db")
        await store.open()
        yield store
        await store.close()

    @pytest.fixture
    def open_hub(self, log: EventStore) -> OpenHub:
        async def open_hub() -> Hub:
            hub = LocalHub()
            await hub.start()
            return hub

        return open_hub
