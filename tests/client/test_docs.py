"""The examples in the SDK's docstrings run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "chatd.client.client",
    "chatd.client.connection",
    "chatd.client.errors",
    "chatd.client.http",
    "chatd.client.matching",
    "chatd.client.scenario",
    "chatd.client.tokens",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0 or name == "chatd.client.client"
