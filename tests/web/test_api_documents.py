"""The API documents made from the code: the AsyncAPI document of `/ws` is valid AsyncAPI 3.0
(checked against the published JSON Schema, which tests/system-deps fetches from the npm
registry) and names every frame and event kind the code has; the OpenAPI document is valid
OpenAPI 3.1 and describes exactly the routes the app serves under /api/."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, get_args

import jsonschema
import pytest
from openapi_spec_validator import validate as validate_openapi
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from starlette.routing import Route

from chatd.domain.rules import Rules
from chatd.process.assemble import assemble
from chatd.web.asyncapi import asyncapi_document
from chatd.web.http_errors import API_FALLBACK
from chatd.web.openapi import openapi_document
from protocol import frames as f
from protocol.events import CHAT_KINDS

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = (
    ROOT / ".cache" / "asyncapi-specs-6.11.1" / "package" / "schemas" / "3.0.0-without-$id.json"
)


@pytest.fixture(scope="module")
def validator() -> Any:
    if not SCHEMA.exists():
        raise AssertionError(f"{SCHEMA} is missing: run tests/system-deps (make test does)")
    schema = json.loads(SCHEMA.read_text())
    return jsonschema.validators.validator_for(schema)(schema)


def problems(validator: Any, document: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def test_the_document_is_valid_asyncapi_3(validator: Any) -> None:
    assert problems(validator, asyncapi_document()) == []


def test_the_schema_check_is_not_a_formality(validator: Any) -> None:
    broken = asyncapi_document()
    broken["operations"]["send"]["action"] = "publish"  # AsyncAPI 2's word, not 3's
    assert problems(validator, broken)


def test_every_frame_and_event_kind_is_in_it() -> None:
    document = asyncapi_document()
    messages = document["components"]["messages"]
    names = {(m["name"], m["title"]) for m in messages.values()}
    for union in (f.ClientFrame, f.ServerFrame):
        for frame in get_args(union):
            tag = str(frame.__struct_config__.tag)
            assert (tag, frame.__name__) in names, tag
            assert frame.__name__ in document["components"]["schemas"]
    kinds = {m["title"].removeprefix("event ") for m in messages.values() if m["name"] == "event"}
    assert kinds >= set(CHAT_KINDS)


def test_the_operators_day_is_in_it_with_the_shapes_of_its_frames_and_events() -> None:
    """`assign` and `note`, their events and the summary's `assignee` come from the Structs
    (version 1.1): nothing was written into the document by hand."""
    document = asyncapi_document()
    messages = document["components"]["messages"]
    schemas = document["components"]["schemas"]
    assert messages["client.assign"]["payload"] == {"$ref": "#/components/schemas/Assign"}
    assert messages["client.note"]["payload"] == {"$ref": "#/components/schemas/PrivateNote"}
    assert set(schemas["Assign"]["required"]) == {"type", "chat", "operator"}
    assert set(schemas["PrivateNote"]["required"]) == {"type", "chat", "text"}
    for kind, data in (("chat.assigned", "ChatAssigned"), ("note", "NotePosted")):
        payload = messages[f"event.{kind}"]["payload"]["allOf"][1]["properties"]
        assert payload == {
            "kind": {"const": kind},
            "data": {"$ref": f"#/components/schemas/{data}"},
        }
    assert schemas["ChatAssigned"]["required"] == ["operator"]
    assert "assignee" in schemas["ChatSummary"]["properties"]
    assert "assignee" not in schemas["ChatSummary"].get("required", [])


def test_refs_all_resolve() -> None:
    document = asyncapi_document()
    text = json.dumps(document)
    refs = {part.split('"')[0] for part in text.split('"$ref": "')[1:]}
    for ref in refs:
        node: Any = document
        for key in ref.removeprefix("#/").split("/"):
            assert key in node, ref
            node = node[key]


# ---- OpenAPI -------------------------------------------------------------------------------


def test_the_openapi_document_is_valid_openapi_3_1() -> None:
    validate_openapi(openapi_document())


def test_the_openapi_check_is_not_a_formality() -> None:
    broken = openapi_document()
    broken["paths"]["/api/v1/chats"]["get"]["responses"] = "none"
    with pytest.raises(OpenAPIValidationError):
        validate_openapi(broken)


def test_every_api_route_is_documented_and_nothing_else(tmp_path: Path) -> None:
    app = assemble(db=tmp_path / "chatd.db", secret="s" * 32, rules=Rules())
    served: set[tuple[str, str]] = set()
    for route in app.routes:
        if route is API_FALLBACK or not isinstance(route, Route):
            continue  # the fallback only answers other paths' 404 and 405 as JSON
        if route.path.startswith("/api/") or route.path in ("/healthz", "/livez", "/readyz"):
            path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
            served |= {(m, path) for m in route.methods or () if m != "HEAD"}
    documented = {
        (method.upper(), path)
        for path, item in openapi_document()["paths"].items()
        for method in item
    }
    assert served == documented
