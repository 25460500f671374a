"""The claims' deadlines, fired by the server itself (docs/protocol.md 11).

A deadline is not a timer kept somewhere: it lives in the log. A claim's request or offer
carries its time, and `chatd.domain.deadlines.timers` says from the chat's state when its wait
ends. Firing one is an ordinary command (`ChatService.escalate_claim`, `expire_offer`) decided
against the chat's current state, so it happens exactly once however many times it is tried:
the second try, on this node or on another, finds the claim no longer waiting and is refused;
two nodes racing to append meet at the store's expected seq, and the loser decides again.

So every node runs the same loop and needs no leader: read the claims that wait (an index of
the read model), work out when each is due, fire what is due, sleep until the next one or
the next look, whichever is first. A deadline that passed while no server ran fires on the
first pass after start-up; one that belongs to a claim made on another node is found by the
next look, at most `look_every` seconds later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from chatd.domain.deadlines import Timer, timers
from chatd.domain.errors import Rejection
from chatd.service import ChatService

log = logging.getLogger(__name__)

# How often the loop looks at the waiting claims again, at the longest. Deadlines are fired
# within this of their time even when this node did not see the claim made.
LOOK_EVERY = 2.0
# Deadlines fired at once, at most: enough to fill a group commit, few enough that a crowd of
# deadlines does not crowd out the sockets' own commands.
FIRE_AT_ONCE = 64


@dataclass(frozen=True, slots=True)
class Pass:
    """What one pass did: the deadlines it fired, and when the next known one falls due."""

    fired: list[Timer]
    next_due: datetime | None


class DeadlineTimers:
    def __init__(self, service: ChatService, *, look_every: float = LOOK_EVERY) -> None:
        self._service = service
        self._look_every = look_every
        # When each waiting claim falls due, worked out once from its chat's state: the time
        # its wait started does not change while it waits. A claim that stops waiting leaves
        # the store's list and is forgotten here too.
        self._known: dict[str, Timer | None] = {}

    async def run(self, running: Callable[[], bool]) -> None:
        """Fires deadlines while `running()`, until cancelled."""
        while True:
            wait = self._look_every
            if running():
                try:
                    done = await self.fire_due()
                except Exception:
                    log.exception("firing deadlines failed; trying again shortly")
                else:
                    if done.next_due is not None:
                        until = (done.next_due - self._service.now()).total_seconds()
                        wait = min(wait, max(until, 0.0))
            await asyncio.sleep(wait)

    async def fire_due(self) -> Pass:
        """One pass: every waiting claim whose deadline has passed by the service's clock
        gets its event (`return.escalated`, `return.expired`)."""
        waiting = await self._service.store.waiting_claims()
        still = {claim for claim, _chat in waiting}
        for claim in list(self._known):
            if claim not in still:
                del self._known[claim]
        now = self._service.now()
        due: list[Timer] = []
        next_due: datetime | None = None
        for claim, chat in waiting:
            timer = await self._timer(claim, chat)
            if timer is None:
                continue
            if timer.due > now:
                next_due = timer.due if next_due is None else min(next_due, timer.due)
                continue
            due.append(timer)
            # Fired or refused, the claim's wait is over or has changed: look again next pass.
            self._known.pop(claim, None)
        fired: list[Timer] = []
        failures: list[BaseException] = []
        # Deadlines due together are fired together, so that their events share commits:
        # one after another, fifty deadlines of one second were fired up to a second late
        # on PostgreSQL (a commit's round trip each).
        for start in range(0, len(due), FIRE_AT_ONCE):
            batch = due[start : start + FIRE_AT_ONCE]
            outcomes = await asyncio.gather(*map(self._fire, batch), return_exceptions=True)
            for timer, outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    failures.append(outcome)
                elif outcome:
                    fired.append(timer)
        if failures:
            raise failures[0]
        return Pass(fired, next_due)

    async def _timer(self, claim: str, chat: str) -> Timer | None:
        if claim in self._known:
            return self._known[claim]
        state = await self._service.states.get(chat)
        found = None
        if state is not None:
            found = next((t for t in timers(state, self._service.rules) if t.claim == claim), None)
        self._known[claim] = found
        return found

    async def _fire(self, timer: Timer) -> bool:
        if timer.action == "escalate":
            outcome = await self._service.escalate_claim(timer.claim)
        else:
            outcome = await self._service.expire_offer(timer.claim)
        if isinstance(outcome, Rejection):
            # Another node fired it first, or somebody acted just before the deadline.
            log.debug("deadline of %s not fired: %s", timer.claim, outcome.message)
            return False
        log.info("deadline of claim %s passed: %s", timer.claim, timer.action)
        return True
