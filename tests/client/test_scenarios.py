"""Scripted conversations: every shipped scenario runs green against a real server; a wrong
expectation fails with a readable diff; a bad file is refused before anything runs."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chatd.client import scenario as sc
from chatd.client.runner import Settings, run_files
from protocol.codec import Subprotocol
from tests.e2e.harness import SECRET, ServerProcess

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "chatd" / "client" / "examples" / "scenarios").glob("*.toml"))


def settings(
    server: ServerProcess, subprotocol: Subprotocol = "chatd.v1.json"
) -> tuple[Settings, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    config = Settings(
        url=server.url, secret=SECRET, subprotocol=subprotocol, out=out, err=err, timeout=5.0
    )
    return config, out, err


def test_the_portal_stories_ship_as_scenarios() -> None:
    names = {path.stem for path in SCENARIOS}
    assert {
        "approval_to_pickup_point",
        "refusal_dispute_manager_approval",
        "shop_offer_awaiting_buyer",
        "simple_chat",
    } <= names


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
@pytest.mark.parametrize("subprotocol", ["chatd.v1.json", "chatd.v1.msgpack"])
async def test_every_shipped_scenario_runs_green(
    shared_server: ServerProcess, path: Path, subprotocol: Subprotocol
) -> None:
    config, out, err = settings(shared_server, subprotocol=subprotocol)
    assert await run_files([str(path)], config) == 0, err.getvalue()
    assert out.getvalue().startswith("ok "), out.getvalue()


def test_chatd_bot_run_from_the_command_line(shared_server: ServerProcess) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "chatd",
            "bot",
            "run",
            "--url",
            shared_server.url,
            *map(str, SCENARIOS),
        ],
        env={**os.environ, "CHATD_SECRET": SECRET},
        capture_output=True,
        text=True,
        timeout=90,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ok ") == len(SCENARIOS)


WRONG_TEXT = """
title = "a shop that expects the wrong text"

[actors.buyer]
role = "buyer"

[actors.shop]
role = "seller"

[[steps]]
actor = "buyer"
do = "open"
seller = "shop"
save = "chat"

[[steps]]
actor = "buyer"
do = "send"
chat = "$chat"
text = "Здравствуйте, товар не отправили."

[[steps]]
actor = "shop"
expect = "event"
kind = "message"
text = "Здравствуйте, товар отправили."
within = 0.5
"""


def test_a_wrong_expectation_exits_non_zero_with_a_diff(
    shared_server: ServerProcess, tmp_path: Path
) -> None:
    path = tmp_path / "wrong.toml"
    path.write_text(WRONG_TEXT, encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "chatd",
            "bot",
            "run",
            "--url",
            shared_server.url,
            "--secret",
            SECRET,
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 1
    report = result.stderr
    assert f"FAIL {path}, step 3: shop expects event message" in report
    assert "nothing matching arrived within 0.5 s" in report
    assert "--- expected\n" in report and "+++ received\n" in report
    assert '-  "text": "Здравствуйте, товар отправили."' in report
    assert '+  "text": "Здравствуйте, товар не отправили."' in report
    # What the shop actually received, the unmatched marked.
    assert "* event $chat#2 message  'Здравствуйте, товар не отправили.'" in report


async def test_an_unexpected_success_and_a_different_error_are_reported(
    shared_server: ServerProcess, tmp_path: Path
) -> None:
    base = WRONG_TEXT.split('[[steps]]\nactor = "shop"')[0]
    success = tmp_path / "success.toml"
    success.write_text(
        base.replace(
            'text = "Здравствуйте, товар не отправили."',
            'text = "Здравствуйте"\nexpect_error = "contacts_forbidden"',
        ),
        encoding="utf-8",
    )
    config, _, err = settings(shared_server)
    assert await run_files([str(success)], config) == 1
    assert "expected the error contacts_forbidden, but it went through" in err.getvalue()

    other = tmp_path / "other.toml"
    other.write_text(
        base.replace(
            'text = "Здравствуйте, товар не отправили."',
            'text = "звоните 89123456789"\nexpect_error = "conflict"',
        ),
        encoding="utf-8",
    )
    config, _, err = settings(shared_server)
    assert await run_files([str(other)], config) == 1
    assert "a different error came back" in err.getvalue()
    assert '- code: expected "conflict", got "contacts_forbidden"' in err.getvalue()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('do = "send"', 'do = "sned"'), "step 2: unknown do = 'sned' (known: open, send, read,"),
        (
            ('text = "Здравствуйте, товар не отправили."', 'txt = "x"'),
            "step 2 (do = 'send'): Object contains unknown field `txt`",
        ),
        (
            ('chat = "$chat"', 'chat = "$chta"'),
            "step 2 (buyer send): $chta is not defined by [vars], an actor or an earlier step",
        ),
        (('actor = "shop"', 'actor = "shopp"'), "step 3 (shopp expects event message): no actor"),
        (('role = "seller"', 'role = "seler"'), "unknown value 'seler' (at actors.shop.role)"),
        (("within = 0.5", 'within = "soon"'), "Expected `float | null`, got `str` (at within)"),
        (('title = "a shop that expects the wrong text"', ""), "missing required field `title`"),
    ],
)
def test_a_bad_file_is_refused_with_where_and_why(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = tmp_path / "bad.toml"
    assert change[0] in WRONG_TEXT
    path.write_text(WRONG_TEXT.replace(change[0], change[1], 1), encoding="utf-8")
    with pytest.raises(sc.ScenarioError) as refused:
        sc.load(path)
    assert message in str(refused.value)
    assert str(path) in str(refused.value)
    result = subprocess.run(
        [sys.executable, "-m", "chatd", "bot", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert message in result.stderr


def test_roles_are_checked_before_running(tmp_path: Path) -> None:
    path = tmp_path / "roles.toml"
    path.write_text(
        WRONG_TEXT + '\n[actors.mp]\nrole = "system"\n\n[[steps]]\nactor = "mp"\ndo = "open"\n'
        'seller = "shop"\n',
        encoding="utf-8",
    )
    with pytest.raises(sc.ScenarioError, match="a system actor only registers orders"):
        sc.load(path)
