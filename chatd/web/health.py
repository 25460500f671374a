"""`/livez` and `/readyz`, for an orchestrator's probes (`/healthz` stays as the contract
has it: 200 once the store is open).

- `/livez`: 200 whenever the process answers at all. A failed liveness probe restarts the
  process, which cures nothing a database outage causes, so nothing else is asked.
- `/readyz`: 200 when the store and the hub answer now (a `max(pos)` read of the log, and a
  Redis PING for the Redis hub), each within `READY_TIMEOUT`; else 503 `unavailable` with
  `details.checks`, which part failed. A node that is not ready is taken out of the load
  balancer's rotation until it is again.

The answer says only `ok`, `failing` or `timeout` per part: why a part fails (an address, a
driver's message) is the operator's to read in the log, where each change of a part's state
writes one line, not one per probe. Probes that arrive while a check runs share its answer,
so a flood of them asks the store and the hub no more than one at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response

from chatd.hub.base import Hub
from chatd.observability.logs import fields
from chatd.store.base import EventStore
from chatd.web.http import Api, error_response, json_response
from protocol.codes import ErrorCode

log = logging.getLogger(__name__)

# How long each part may take to answer a readiness check.
READY_TIMEOUT = 2.0

PartState = Literal["ok", "failing", "timeout"]


class Probes:
    def __init__(
        self, api: Api, store: EventStore, hub: Hub, *, timeout: float = READY_TIMEOUT
    ) -> None:
        self._api = api
        self._parts: dict[str, Callable[[], Awaitable[Any]]] = {
            "store": store.last_position,
            "hub": hub.check,
        }
        self._timeout = timeout
        self._running: asyncio.Task[dict[str, PartState]] | None = None
        self._last: dict[str, PartState] = {}

    async def livez(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        if not self._api.ready:
            return error_response(ErrorCode.UNAVAILABLE, "starting or stopping", {"checks": {}})
        checks = await self.check()
        failed = [part for part, state in checks.items() if state != "ok"]
        if failed:
            return error_response(
                ErrorCode.UNAVAILABLE, "not ready: " + ", ".join(failed), {"checks": checks}
            )
        return json_response({"status": "ok", "checks": checks})

    async def check(self) -> dict[str, PartState]:
        """Each part's state now; a check already running is shared, not repeated."""
        running = self._running
        if running is None or running.done():
            running = self._running = asyncio.create_task(self._check_all(), name="readyz")
        # Shielded: a probe that gives up (its client went away) does not cancel the check
        # other probes wait for.
        return await asyncio.shield(running)

    async def _check_all(self) -> dict[str, PartState]:
        names = list(self._parts)
        states = await asyncio.gather(*(self._check(name) for name in names))
        return dict(zip(names, states, strict=True))

    async def _check(self, part: str) -> PartState:
        state: PartState = "ok"
        why = ""
        try:
            async with asyncio.timeout(self._timeout):
                await self._parts[part]()
        except TimeoutError:
            state, why = "timeout", f"no answer within {self._timeout:g} s"
        except Exception as exc:
            state, why = "failing", f"{type(exc).__name__}: {exc}"
        before = self._last.get(part, "ok")
        self._last[part] = state
        if state != before:
            if state == "ok":
                log.info(
                    "readiness: %s answers again",
                    part,
                    extra=fields(event="ready_again", part=part),
                )
            else:
                log.warning(
                    "readiness: %s %s (%s)",
                    part,
                    state,
                    why,
                    extra=fields(event="not_ready", part=part, state=state, error=why),
                )
        return state
