"""The operators each shop is known to have: whom its chats may be assigned to, and by which
name they are shown.

Nothing the server reads lists a shop's operators: the marketplace signs their tokens, and a
token names one operator (`sub`, `name`) of one shop (`seller`). So the server learns them
from those tokens: an operator who signs in on `/ws`, lists the shop's operators, or assigns
a chat is kept (`OperatorStore`, beside the log, shared by every node), under the name of
their latest token. An operator never seen cannot be given a chat yet; anyone may take one,
since taking names oneself. API keys are no operators: they are never kept, and cannot take.

A sign-in is written once per operator and name per process (`_seen` remembers what was
written), so a hello costs a store write only the first time; a store that cannot take it
then costs the operator nothing but being assignable a little later.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

from chatd.domain.actors import Actor
from chatd.domain.errors import Rejection, not_found
from chatd.store.base import OperatorRecord, OperatorStore, StoreError
from protocol.events import Operator

log = logging.getLogger(__name__)

# (shop, operator) pairs whose name this process has written: enough for every operator of a
# large marketplace's busy hour; one that fell out is written once more, which is harmless.
_REMEMBERED = 50_000


class Operators:
    def __init__(
        self, store: OperatorStore, clock: Callable[[], datetime], size: int = _REMEMBERED
    ) -> None:
        self._store = store
        self._clock = clock
        self._size = size
        self._seen: OrderedDict[tuple[str, str], str] = OrderedDict()

    async def seen(self, actor: Actor) -> None:
        """Keeps `actor` as an operator of its shop, when it is one signed in with a token."""
        if actor.role != "seller" or actor.shop is None or actor.scopes is not None:
            return
        pair = (actor.shop, actor.id)
        if self._seen.get(pair) == actor.name:
            self._seen.move_to_end(pair)
            return
        record = OperatorRecord(
            shop=actor.shop, id=actor.id, name=actor.name, seen_at=self._clock()
        )
        try:
            await self._store.remember_operator(record)
        except StoreError as exc:
            log.warning("operator %s of shop %s not kept: %s", actor.id, actor.shop, exc)
            return
        self._seen[pair] = actor.name
        self._seen.move_to_end(pair)
        while len(self._seen) > self._size:
            self._seen.popitem(last=False)

    async def resolve(self, actor: Actor, operator: str | None) -> Operator | Rejection | None:
        """The operator of `actor`'s shop named `operator` (None: nobody), as an assignment
        names them; `not_found` for one the shop is not known to have."""
        if operator is None:
            return None
        if operator == actor.id and actor.scopes is None:
            # Taking the chat: the token itself says who this operator is.
            await self.seen(actor)
            return Operator(id=actor.id, name=actor.name)
        record = await self._store.operator_of(actor.shop or "", operator)
        if record is None:
            return not_found("operator")
        # The one who assigns is an operator as well, whom the next assignment may name.
        await self.seen(actor)
        return Operator(id=record.id, name=record.name)

    async def of_shop(self, shop: str) -> list[OperatorRecord]:
        return await self._store.operators_of(shop)
