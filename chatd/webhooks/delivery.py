"""Delivering the shops' events to their webhook endpoints: at least once, in log order,
nothing lost across a crash.

What an endpoint is owed comes from the log: the shop's feed (its routing key, as a socket
of one of its operators receives it) after the endpoint's cursor, a log position kept in the
store. The cursor moves past an event only once it was delivered (any 2xx) or given up on
(every wait of `--webhook-retries` spent), in the same transaction as the attempt's entry in
the delivery log; an event the endpoint did not ask for is passed over. A process killed at
any moment therefore resumes, on any node, from the first event not yet settled: at worst
the attempt in flight is made again, under the same `webhook-id`.

One event at a time per endpoint, in log order, which is `seq` order within each chat. The
price is that an endpoint that keeps failing holds back its later events until the event at
its head is delivered or given up.

One node at a time delivers to an endpoint: each node's dispatcher takes the endpoint's
lease in the store (`LEASE` seconds, renewed every `RENEW` seconds while it holds it) and
runs one worker per endpoint it holds. A node that dies holds its endpoints until their
leases run out; a node that lost a lease can no longer move the cursor (the store checks
the owner in every write), so its worker stops at its next attempt.

Workers wake on the hub (the shop's events, on any node, as sockets get them) and, should a
wake-up be missed, read the feed every `POLL` seconds anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import msgspec

from chatd.hub.base import Hub, Outgoing
from chatd.observability.logs import fields
from chatd.render import event_frame
from chatd.routing import shop_key
from chatd.store.base import (
    DeliveryRecord,
    EventStore,
    StoreClosed,
    Stored,
    WebhookProgress,
    WebhookRecord,
)
from chatd.webhooks import destinations, signing
from chatd.webhooks.settings import WebhookSettings
from protocol.frames import EventFrame

log = logging.getLogger(__name__)

# An endpoint's lease: how long a node holds it without renewing, and how often it renews.
LEASE = 10.0
RENEW = 3.0
# How often a dispatcher looks for endpoints to take (created or freed on another node).
SCAN = 2.0
# How often a worker reads its feed without a wake-up from the hub.
POLL = 2.0
PAGE = 100
# The longest error kept in the delivery log.
MAX_ERROR = 300


class WebhookPayload(msgspec.Struct, frozen=True):
    """The body of a delivery: the Standard Webhooks envelope around the `event` frame."""

    type: str
    timestamp: datetime
    data: EventFrame


_encoder = msgspec.json.Encoder()


def payload(stored: Stored, log_id: str) -> bytes:
    """The body for one event: the same bytes at every attempt. `data` is the frame an
    operator's socket receives (the shop's wording of texts)."""
    frame = event_frame(stored, log_id, "seller")
    return _encoder.encode(WebhookPayload(type=frame.kind, timestamp=frame.at, data=frame))


@dataclass(frozen=True, slots=True)
class Answer:
    """How one attempt went: the endpoint's status when it answered, else what failed."""

    status: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Sender:
    """POSTs deliveries; one client, and so one pool of connections, for all endpoints."""

    def __init__(self, settings: WebhookSettings) -> None:
        self.settings = settings
        # No redirects (a 3xx could point anywhere, a private address included: it is a
        # failed attempt) and no proxies from the environment.
        self.client = httpx.AsyncClient(
            follow_redirects=False, trust_env=False, timeout=settings.timeout
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> Answer:
        timeout = self.settings.timeout
        try:
            async with asyncio.timeout(timeout):
                return await self._send(url, headers, body)
        except TimeoutError:
            return Answer(None, f"no answer within {timeout:g} s")
        except destinations.DestinationRefused as exc:
            return Answer(None, f"destination refused: {exc}")
        except httpx.HTTPError as exc:
            return Answer(None, _short(f"{type(exc).__name__}: {exc}"))

    async def _send(self, url: str, headers: dict[str, str], body: bytes) -> Answer:
        # Checked again at each attempt: the name may resolve elsewhere than at creation.
        target = await destinations.check(url, allow_private=self.settings.allow_private)
        request_url = httpx.URL(url)
        sent_headers = dict(headers)
        extensions: dict[str, str] = {}
        if target.address is not None:
            # Connect to the address just checked, not to whatever the name resolves to a
            # moment later; the request still names the host, and TLS checks its name.
            sent_headers["host"] = request_url.netloc.decode("ascii")
            if target.destination.scheme == "https":
                extensions["sni_hostname"] = target.destination.host
            request_url = request_url.copy_with(host=target.address)
        async with self.client.stream(
            "POST", request_url, content=body, headers=sent_headers, extensions=extensions
        ) as response:
            # The status is the answer; the body is not read, however large it is.
            status = response.status_code
        error = None if 200 <= status < 300 else f"HTTP {status}"
        return Answer(status, error)


def _short(text: str) -> str:
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"


class _Wake:
    """A hub subscriber that only notes that an event of the shop was committed."""

    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def push(self, item: Outgoing) -> None:
        # Read marks (no position) are no events.
        if item.pos is not None:
            self.event.set()


class LeaseLost(Exception):
    """The store refused to move an endpoint's cursor: its lease is another node's now, or
    the endpoint was deleted."""


class WebhookDispatcher:
    """One per node: takes the leases of endpoints no other node holds and runs a worker
    for each."""

    def __init__(
        self,
        store: EventStore,
        hub: Hub,
        settings: WebhookSettings,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.hub = hub
        self.settings = settings
        self.now = now
        # Unique per process: a restarted node is another owner, which waits for the dead
        # one's leases to run out rather than guess that it is really dead.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._scan = asyncio.Event()
        self._renewed = 0.0
        self._sender: Sender | None = None
        # Attempts by outcome (delivered, retrying, failed), read by /metrics.
        self.outcomes: Counter[str] = Counter()

    def poke(self) -> None:
        """Look for endpoints at once (one was created or deleted on this node)."""
        self._scan.set()

    def stop(self, endpoint: str) -> None:
        """Stops this node's deliveries to `endpoint` at once (it was deleted)."""
        task = self._workers.pop(endpoint, None)
        if task is not None:
            task.cancel()

    async def run(self, ready: Callable[[], bool]) -> None:
        """The dispatcher's loop, for the life of the event loop; it works while `ready()`
        (the store is open)."""
        self._sender = Sender(self.settings)
        try:
            while True:
                self._scan.clear()
                if ready():
                    try:
                        await self._pass()
                    except StoreClosed:
                        pass
                    except Exception:
                        log.exception("webhooks: a pass over the endpoints failed")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(SCAN):
                        await self._scan.wait()
        except asyncio.CancelledError:
            # Stopped with the server: stop the workers and close the connections. An event
            # loop that is dropped instead closes this coroutine with no loop left to await
            # on, so nothing is awaited then.
            for endpoint in list(self._workers):
                self.stop(endpoint)
            await self._sender.aclose()
            raise

    async def _pass(self) -> None:
        for endpoint, task in list(self._workers.items()):
            if task.done():
                del self._workers[endpoint]
        loop = asyncio.get_running_loop()
        if self._workers and loop.time() - self._renewed >= RENEW:
            held = await self.store.renew_webhook_leases(self.owner, self._until())
            self._renewed = loop.time()
            for endpoint in list(self._workers):
                if endpoint not in held:
                    self.stop(endpoint)
        live = await self.store.live_webhooks()
        ids = {record.id for record in live}
        for endpoint in list(self._workers):
            if endpoint not in ids:
                self.stop(endpoint)
        for record in live:
            if record.id in self._workers:
                continue
            progress = await self.store.lease_webhook(
                record.id, self.owner, self.now(), self._until()
            )
            if progress is not None:
                self._workers[record.id] = asyncio.create_task(
                    self._work(record, progress), name=f"webhook-{record.id}"
                )

    def _until(self) -> datetime:
        return self.now() + timedelta(seconds=LEASE)

    # ---- one endpoint ------------------------------------------------------------------------

    async def _work(self, record: WebhookRecord, progress: WebhookProgress) -> None:
        key = shop_key(record.shop)
        wanted = None if "*" in record.events else frozenset(record.events)
        wake = _Wake()
        # Subscribed before the first read: an event committed after a read wakes the
        # worker, one committed before is in the read.
        self.hub.subscribe([key], wake)
        saved = progress.cursor
        try:
            while True:
                wake.event.clear()
                page = await self.store.read_feed([key], progress.cursor, PAGE)
                for stored in page:
                    if wanted is not None and stored.event.kind not in wanted:
                        # Passed over; the failed attempts counted belong to the next event
                        # the endpoint wants, so they stay.
                        progress = dataclasses.replace(progress, cursor=stored.pos)
                        continue
                    progress = await self._deliver(record, stored, progress)
                    saved = progress.cursor
                if progress.cursor > saved:
                    if not await self.store.advance_webhook(record.id, self.owner, progress):
                        raise LeaseLost(record.id)
                    saved = progress.cursor
                if len(page) < PAGE:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(POLL):
                            await wake.event.wait()
        except LeaseLost:
            log.info("webhooks: endpoint %s is no longer this node's", record.id)
        except StoreClosed:
            pass
        except Exception:
            log.exception(
                "webhooks: deliveries to %s stopped; another pass resumes them", record.id
            )
            await self._release(record.id)
        finally:
            self.hub.unsubscribe([key], wake)

    async def _release(self, endpoint: str) -> None:
        # Let the next pass (on any node) take it again rather than wait out the lease.
        with contextlib.suppress(Exception):
            await self.store.release_webhook(endpoint, self.owner)

    async def _deliver(
        self, record: WebhookRecord, stored: Stored, progress: WebhookProgress
    ) -> WebhookProgress:
        """Tries the event until it is delivered or given up; the progress after it."""
        assert self._sender is not None, "run() makes the sender before any worker starts"
        body = payload(stored, self.store.log_id)
        message = signing.message_id(record.id, stored.pos)
        retries = self.settings.retries
        attempts, retry_at = progress.attempts, progress.retry_at
        while True:
            if retry_at is not None:
                await asyncio.sleep(max(0.0, (retry_at - self.now()).total_seconds()))
            stamp = int(self.now().timestamp())
            answer = await self._sender.send(
                record.url, signing.headers(record.secret, message, stamp, body), body
            )
            attempts += 1
            at = self.now()
            if answer.delivered or attempts > len(retries):
                outcome = "delivered" if answer.delivered else "failed"
                after = WebhookProgress(stored.pos)
            else:
                outcome = "retrying"
                retry_at = at + retries[attempts - 1]
                after = WebhookProgress(progress.cursor, attempts, retry_at)
            entry = DeliveryRecord(
                endpoint=record.id,
                message=message,
                pos=stored.pos,
                chat=stored.event.stream,
                seq=stored.event.seq,
                kind=stored.event.kind,
                attempt=attempts,
                at=at,
                outcome=outcome,
                status=answer.status,
                error=answer.error,
            )
            if not await self.store.advance_webhook(record.id, self.owner, after, entry):
                raise LeaseLost(record.id)
            self.outcomes[outcome] += 1
            if outcome != "delivered":
                next_try = retry_at.isoformat() if retry_at and outcome == "retrying" else None
                # The endpoint's id, never its URL (a URL may carry a credential of the
                # shop's); the shop reads the same from the endpoint's delivery log.
                log.warning(
                    "webhook delivery to %s %s: %s",
                    record.id,
                    outcome,
                    answer.error or f"HTTP {answer.status}",
                    extra=fields(
                        event="webhook_failed",
                        endpoint=record.id,
                        shop=record.shop,
                        message_id=message,
                        pos=stored.pos,
                        attempt=attempts,
                        status=answer.status,
                        outcome=outcome,
                        retry_at=next_try,
                    ),
                )
            if outcome != "retrying":
                return after
