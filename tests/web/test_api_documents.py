"""The AsyncAPI document of `/ws` is valid AsyncAPI 3.0 (checked against the published JSON
Schema, which tests/system-deps fetches from the npm registry) and names every frame and
event kind the code has."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import jsonschema
import pytest

from chatd.web.asyncapi import asyncapi_document
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


def test_refs_all_resolve() -> None:
    document = asyncapi_document()
    text = json.dumps(document)
    refs = {part.split('"')[0] for part in text.split('"$ref": "')[1:]}
    for ref in refs:
        node: Any = document
        for key in ref.removeprefix("#/").split("/"):
            assert key in node, ref
            node = node[key]
