"""The runnable examples run as programs against a real server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import SECRET, ServerProcess

pytestmark = pytest.mark.timeout(60)

EXAMPLES = Path(__file__).resolve().parents[2] / "chatd" / "client" / "examples"
EXPECTED = {
    "quickstart": ["shop sees #2 message", "buyer sees the answer of Анна"],
    "returns_bot": [
        "buyer sees: Процедура возврата согласована.",
        "buyer sees: Денежные средства возвращены на баланс покупателя.",
        "Money(value=118600, currency='RUB')",
    ],
    "resume": [
        "missed while away: ['Здравствуйте, товар не отправили.', 'Подскажите, когда ждать?']"
    ],
}


def test_every_example_is_covered() -> None:
    assert {p.stem for p in EXAMPLES.glob("*.py")} - {"__init__"} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(shared_server: ServerProcess, name: str) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py")],
        env={**os.environ, "CHATD_URL": shared_server.url, "CHATD_SECRET": SECRET},
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert result.returncode == 0, result.stderr
    for line in EXPECTED[name]:
        assert line in result.stdout, result.stdout
