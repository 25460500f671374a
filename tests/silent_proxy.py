"""A TCP proxy that a test can make silent: while frozen it forwards nothing either way and
closes nothing, as a network partition does. (tests/hub/proxy.py drops connections instead,
which a client notices at once: a partition gives it nothing to notice.)

`sever()` is what a partition can leave behind: the server's end of every connection is
gone, and the client, told nothing, finds out only when it next sends something (a reset).

Runs in the test's event loop; the test's own connections to the target go around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct


class SilentProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._tasks: set[asyncio.Task[None]] = set()
        # (client's writer, upstream writer) of each connection, while it lasts.
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._severed: set[asyncio.StreamWriter] = set()  # client ends whose upstream is gone

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def freeze(self) -> None:
        """From now on nothing passes, and new connections get no answer."""
        self._flowing.clear()

    def thaw(self) -> None:
        """What was held passes, and everything after it."""
        self._flowing.set()

    def sever(self) -> None:
        """Closes the upstream end of every open connection and tells the clients nothing:
        a client learns it only from the reset its next send gets. New connections pass."""
        for client, upstream in list(self._pairs):
            self._severed.add(client)
            upstream.transport.abort()
        self._pairs.clear()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for client, upstream in list(self._pairs):
            client.transport.abort()
            upstream.transport.abort()
        for client in list(self._severed):
            client.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._flowing.wait()  # a connection made during a partition hangs, unanswered
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.accepted += 1
        pair = (writer, up_writer)
        self._pairs.add(pair)
        self._spawn(self._upstream(reader, writer, up_writer))
        self._spawn(self._downstream(up_reader, writer))

    async def _upstream(
        self, reader: asyncio.StreamReader, client: asyncio.StreamWriter, sink: asyncio.StreamWriter
    ) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                if client in self._severed:
                    _reset(client)
                    return
                sink.write(data)
                await sink.drain()
            # A close crosses a partition no more than data does.
            await self._flowing.wait()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                sink.close()

    async def _downstream(self, reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                client.write(data)
                await client.drain()
            await self._flowing.wait()
        except (OSError, asyncio.CancelledError):
            return
        if client in self._severed:
            return  # the client hears nothing of it
        with contextlib.suppress(Exception):
            client.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Closes with a reset (RST), as a host does for a packet of a connection it no longer has."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
