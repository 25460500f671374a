"""Running the app under uvicorn, with chatd's own shutdown order: on SIGTERM, stop
accepting, close every socket with 1001 after flushing what it was sent, then let uvicorn
finish (its own default would close sockets with 1012 first)."""

from __future__ import annotations

import socket

import uvicorn

from chatd.web.app import ChatApp


class ChatServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, chat_app: ChatApp) -> None:
        super().__init__(config)
        self.chat_app = chat_app

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
) -> uvicorn.Config:
    return uvicorn.Config(
        chat_app.app,
        host=host,
        port=port,
        # websockets' sans-I/O protocol: the most messages per CPU second here, and it bounds
        # the memory of inflating compressed frames.
        ws="websockets-sansio",
        ws_max_size=max_frame,
        ws_per_message_deflate=deflate,
        # Dead peers are found by pings; a client that stops reading is dropped by its queue.
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        lifespan="on",
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
