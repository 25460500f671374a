"""Running the app under uvicorn, with chatd's own shutdown order: on SIGTERM, stop
accepting, close every socket with 1001 after flushing what it was sent, then let uvicorn
finish (its own default would close sockets with 1012 first)."""

from __future__ import annotations

import gc
import socket

import uvicorn

from chatd.process.guard import connection_cap, guarded_protocol, raise_file_limit
from chatd.process.stop import ExitsCleanlyOnSignal
from chatd.web.app import ChatApp

# Young collections after this many allocations rather than 700: a fan-out to a thousand
# sockets allocates far more than 700 objects, and the default threshold would promote
# whatever was in flight at that moment towards the oldest generation, whose full collections
# then come every few seconds.
GC_YOUNG_THRESHOLD = 50_000


def settle_garbage_collector() -> None:
    """Called once the app is ready. A full collection scans every tracked object, and a
    server with a thousand sockets tracks a great many: with the defaults it paused for
    120-140 ms every 16-18 s at 8 messages/s into one chat of 1 000 readers, which was most
    of their p99 (`python -m chatd.proof.slow_reader`). What exists now (modules, the app,
    demo data) lives as long as the process, so it is frozen out of the collector's scans,
    and young collections come less often."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


class ChatServer(ExitsCleanlyOnSignal):
    def __init__(self, config: uvicorn.Config, chat_app: ChatApp) -> None:
        super().__init__(config)
        self.chat_app = chat_app

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        settle_garbage_collector()
        if self.started:
            for listening in self.chat_app.on_listening:
                listening()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        await self.chat_app.shutdown()
        await super().shutdown(sockets)


def uvicorn_config(
    chat_app: ChatApp,
    *,
    host: str,
    port: int,
    max_frame: int,
    deflate: bool,
    log_level: str,
    header_timeout: float = 10.0,
    max_connections: int | None = None,
) -> uvicorn.Config:
    cap = connection_cap(max_connections, raise_file_limit())
    return uvicorn.Config(
        chat_app.app,
        # The app's entry is a plain callable that returns a coroutine (chatd.web.entry),
        # which uvicorn would take for ASGI 2.
        interface="asgi3",
        host=host,
        port=port,
        # httptools, with a deadline for a request's headers and a cap on open connections.
        http=guarded_protocol(header_timeout=header_timeout, max_connections=cap),
        # websockets' sans-I/O protocol: the most messages per CPU second here, and it bounds
        # the memory of inflating compressed frames.
        ws="websockets-sansio",
        ws_max_size=max_frame,
        ws_per_message_deflate=deflate,
        # Dead peers are found by pings; a client that stops reading is dropped by its queue.
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        lifespan="on",
        # No logging setup of uvicorn's own: its lines go through the handler the process
        # set up (chatd.observability.logs.configure_logging), in the same format as chatd's,
        # JSON included. Requests are logged by chatd (chatd.web.http_observer), not here.
        log_config=None,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
