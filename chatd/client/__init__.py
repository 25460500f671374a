"""The Python SDK of chatd: `async with connect(url, token) as chat: ...`.

It speaks the wire contract of `protocol` (both subprotocols) and never imports the server.
See README.md beside this file; scripted conversations are SCENARIOS.md.
"""

from chatd.client.client import ChatClient, Pushed, connect, event_data
from chatd.client.connection import Backoff, TokenProvider
from chatd.client.errors import (
    ChatError,
    ClientError,
    ConnectionLost,
    CursorLost,
    ProtocolViolation,
    Unauthorized,
)
from chatd.client.tokens import mint, minter

__all__ = [
    "Backoff",
    "ChatClient",
    "ChatError",
    "ClientError",
    "ConnectionLost",
    "CursorLost",
    "ProtocolViolation",
    "Pushed",
    "TokenProvider",
    "Unauthorized",
    "connect",
    "event_data",
    "mint",
    "minter",
]
