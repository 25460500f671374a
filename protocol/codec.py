"""One reused encoder and decoder per subprotocol (`chatd.v1.json`, `chatd.v1.msgpack`).

Decoding never raises: garbage becomes a `DecodeError` value that says what was wrong and,
where the frame had one, the request `id` to echo.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from protocol.frames import ClientFrame, ServerFrame

Subprotocol = Literal["chatd.v1.json", "chatd.v1.msgpack"]
JSON: Subprotocol = "chatd.v1.json"
MSGPACK: Subprotocol = "chatd.v1.msgpack"
SUBPROTOCOLS: tuple[Subprotocol, ...] = (JSON, MSGPACK)


@dataclass(frozen=True, slots=True)
class DecodeError:
    message: str
    id: str | None = None


class _IdOnly(msgspec.Struct):
    id: Any = None


class Codec:
    """Encodes and decodes frames of one subprotocol. Instances are shared and stateless."""

    def __init__(self, subprotocol: Subprotocol) -> None:
        self.subprotocol = subprotocol
        self.binary = subprotocol == MSGPACK
        if self.binary:
            self._encoder: msgspec.json.Encoder | msgspec.msgpack.Encoder = (
                msgspec.msgpack.Encoder()
            )
            self._client: Any = msgspec.msgpack.Decoder(ClientFrame)
            self._server: Any = msgspec.msgpack.Decoder(ServerFrame)
            self._id_only: Any = msgspec.msgpack.Decoder(_IdOnly)
        else:
            self._encoder = msgspec.json.Encoder()
            self._client = msgspec.json.Decoder(ClientFrame)
            self._server = msgspec.json.Decoder(ServerFrame)
            self._id_only = msgspec.json.Decoder(_IdOnly)

    def encode(self, frame: Any) -> bytes:
        if self.binary:
            # MessagePack would carry times as its timestamp extension; the contract has
            # RFC 3339 strings in both subprotocols, which builtins conversion gives.
            return self._encoder.encode(msgspec.to_builtins(frame))
        return self._encoder.encode(frame)

    def decode_client(self, data: bytes | str) -> ClientFrame | DecodeError:
        try:
            frame: ClientFrame = self._client.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return DecodeError(str(exc), self.request_id(data))
        except Exception as exc:  # garbage must never escape the codec
            return DecodeError(f"undecodable frame: {type(exc).__name__}", self.request_id(data))
        return frame

    def decode_server(self, data: bytes | str) -> ServerFrame:
        """For clients: raises msgspec errors on a frame that breaks the contract."""
        frame: ServerFrame = self._server.decode(data)
        return frame

    def request_id(self, data: bytes | str) -> str | None:
        """The `id` of a frame that may be otherwise broken, when it has a valid one."""
        try:
            value = self._id_only.decode(data).id
        except Exception:  # best effort only
            return None
        if isinstance(value, str) and len(value) <= 64:
            return value
        return None


CODECS: dict[str, Codec] = {name: Codec(name) for name in SUBPROTOCOLS}


def codec_for(subprotocol: str | None) -> Codec:
    return CODECS.get(subprotocol or JSON, CODECS[JSON])
