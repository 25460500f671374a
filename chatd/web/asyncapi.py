"""The AsyncAPI 3.0 document of `/ws`, made from the protocol's own types.

Every client frame, every server frame and every event kind's `data` is a msgspec Struct in
`protocol/`; their JSON Schemas come from msgspec, so the document cannot say what the code
does not do. Served as `/asyncapi.json`; the `/docs` page renders it.

An `event` frame's `data` depends on its `kind`. The document gives the frame itself once
(`data` open), and one message per kind (`event:<kind>`) whose payload pins `kind` and names
the schema of its `data`, so a reader sees what each kind carries.
"""

from __future__ import annotations

from typing import Any, get_args

import msgspec

from protocol import PROTOCOL_REVISION
from protocol import frames as f
from protocol.codec import SUBPROTOCOLS
from protocol.events import CHAT_KINDS, DATA_TYPES

_REF = "#/components/schemas/{name}"


def _frame_types(union: Any) -> list[type[msgspec.Struct]]:
    return [t for t in get_args(union) if isinstance(t, type)]


def _tag(frame: type[msgspec.Struct]) -> str:
    return str(frame.__struct_config__.tag)


def _message(name: str, title: str, payload: dict[str, Any], summary: str) -> dict[str, Any]:
    return {"name": name, "title": title, "summary": summary, "payload": payload}


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the WebSocket protocol, as JSON-ready data."""
    client = _frame_types(f.ClientFrame)
    server = _frame_types(f.ServerFrame)
    data = [DATA_TYPES[kind] for kind in sorted(CHAT_KINDS)]
    _, schemas = msgspec.json.schema_components([*client, *server, *data], ref_template=_REF)
    messages: dict[str, Any] = {}
    receive: list[str] = []
    send: list[str] = []
    for frame in client:
        key = f"client.{_tag(frame)}"
        ref = {"$ref": _REF.format(name=frame.__name__)}
        messages[key] = _message(
            _tag(frame), frame.__name__, ref, f"`{_tag(frame)}`, sent by a client"
        )
        send.append(key)
    for frame in server:
        key = f"server.{_tag(frame)}"
        ref = {"$ref": _REF.format(name=frame.__name__)}
        messages[key] = _message(
            _tag(frame), frame.__name__, ref, f"`{_tag(frame)}`, sent by the server"
        )
        receive.append(key)
    for kind in sorted(CHAT_KINDS):
        key = f"event.{kind}"
        payload = {
            "allOf": [
                {"$ref": _REF.format(name=f.EventFrame.__name__)},
                {
                    "type": "object",
                    "properties": {
                        "kind": {"const": kind},
                        "data": {"$ref": _REF.format(name=DATA_TYPES[kind].__name__)},
                    },
                },
            ]
        }
        messages[key] = _message("event", f"event {kind}", payload, f"an `event` of kind `{kind}`")
        receive.append(key)
    content_types = {"chatd.v1.json": "application/json", "chatd.v1.msgpack": "application/msgpack"}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "chatd WebSocket protocol",
            "version": PROTOCOL_REVISION,
            "description": (
                "Frames over one WebSocket at `/ws`. The client sends `hello` first; every "
                "request may carry an `id` that its answer repeats. Subprotocols: "
                + ", ".join(f"`{name}` ({content_types[name]})" for name in SUBPROTOCOLS)
                + ". See docs/protocol.md in the repository."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:8000",
                "protocol": "ws",
                "pathname": "/ws",
                "description": "chatd serve; `wss` behind TLS",
            }
        },
        "channels": {
            "chat": {
                "address": "/ws",
                "title": "The chat socket",
                "messages": {key: {"$ref": f"#/components/messages/{key}"} for key in messages},
            }
        },
        "operations": {
            "send": {
                "action": "send",
                "title": "Frames a client sends",
                "channel": {"$ref": "#/channels/chat"},
                "messages": [{"$ref": f"#/channels/chat/messages/{key}"} for key in send],
            },
            "receive": {
                "action": "receive",
                "title": "Frames the server sends",
                "channel": {"$ref": "#/channels/chat"},
                "messages": [{"$ref": f"#/channels/chat/messages/{key}"} for key in receive],
            },
        },
        "components": {"schemas": schemas, "messages": messages},
    }
