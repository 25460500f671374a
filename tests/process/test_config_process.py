"""The configuration as a real `chatd` process shows it: status 2 and one line for a bad value,
and a server that listens where the environment and the file say."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from chatd.launcher import Server, free_port

SECRET = "config-tests-secret-" + "x" * 24


def chatd(*argv: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CHATD_")}
    return subprocess.run(
        [sys.executable, "-m", "chatd", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **env},
        cwd=cwd,
    )


def test_bad_values_end_the_process_with_one_line_and_status_2(tmp_path: Path) -> None:
    malformed = tmp_path / "malformed.toml"
    malformed.write_text("port = = 1\n")
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("max-frames = 1\n")
    cases = [
        (["serve"], {"CHATD_PORT": "x"}, "argument --port (from CHATD_PORT): not a whole number"),
        (["serve", "--config", str(malformed)], {}, f"--config: {malformed}: not valid TOML"),
        (["rebuild"], {"CHATD_CONFIG": str(unknown)}, "unknown key 'max-frames'"),
        (["config", "--config", str(tmp_path / "nope.toml")], {}, "nope.toml: no such file"),
        (["serve", "--timezone", "Nowhere/Land"], {}, "argument --timezone: unknown time zone"),
    ]
    for argv, env, says in cases:
        done = chatd(*argv, env=env, cwd=tmp_path)

        assert done.returncode == 2, (argv, done.stderr)
        assert "Traceback" not in done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith(f"chatd {argv[0]}: error: ") and says in last, last
    assert not (tmp_path / "chatd.db").exists(), "nothing ran"


@dataclass
class UnflaggedServer(Server):
    """`chatd serve` with no flag at all: everything from the environment and the file."""

    def command(self) -> list[str]:
        return [sys.executable, "-m", "chatd", "serve"]


def test_a_server_configured_by_file_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    config = tmp_path / "chatd.toml"
    config.write_text(f'port = {port + 1}\ndb = "{tmp_path / "from-file.db"}"\n')
    for name in [name for name in os.environ if name.startswith("CHATD_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CHATD_CONFIG", str(config))
    monkeypatch.setenv("CHATD_PORT", str(port))  # wins over the file's
    monkeypatch.setenv("CHATD_LOG_LEVEL", "warning")

    with UnflaggedServer(db=tmp_path / "unused.db", secret=SECRET, port=port) as server:
        assert httpx.get(f"{server.http}/healthz", timeout=5).status_code == 200
        assert (tmp_path / "from-file.db").exists()
        assert server.terminate() == 0


def test_chatd_config_as_a_process_masks_the_secret(tmp_path: Path) -> None:
    done = chatd(
        "config",
        env={"CHATD_SECRET": SECRET, "CHATD_STORE": "postgresql://chatd:pg-pw@db/chatd"},
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout and "pg-pw" not in done.stdout
    assert "postgresql://chatd:****@db/chatd" in done.stdout
    assert f"**** ({len(SECRET)} bytes)" in done.stdout
