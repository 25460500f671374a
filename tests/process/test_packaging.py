"""`pip install chatd` with no extra is the SQLite server and the SDK, and nothing more.

A wheel of this tree is built once and installed, as a user would (dependencies from the
package index as pip is set up here, at the lock's versions), into a fresh venv; there the
server answers /healthz on SQLite, `chatd.client` imports, and asyncpg, redis and hdrh do
not, while choosing PostgreSQL, Redis or the load tester says which extra to install.
About 20 s: a venv and an install of some twenty wheels.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chatd.launcher import free_port

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "chatd", "protocol")
SECRET = "packaging-tests-" + "x" * 32


def run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{argv}: {done.stdout[-2000:]}{done.stderr[-3000:]}"
    return done.stdout


def plain_env() -> dict[str, str]:
    """No CHATD_* and no PYTHONPATH: the fresh venv must find chatd only where it installed
    it, not in this tree."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CHATD_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with this tree's wheel installed without extras; its bin directory."""
    work = tmp_path_factory.mktemp("packaging")
    source = work / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy(ROOT / name, source / name)
    wheels = work / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", wheels,
        "./source", cwd=work)  # fmt: skip
    [wheel] = wheels.glob("chatd-*.whl")
    fresh = work / "venv"
    run(sys.executable, "-m", "venv", fresh, cwd=work)
    bin_dir = fresh / "bin"
    run(bin_dir / "pip", "install", "--quiet", "--constraint", ROOT / "constraints.txt", wheel,
        cwd=work, env=plain_env())  # fmt: skip
    yield bin_dir


def python(bin_dir: Path, code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [bin_dir / "python", "-c", code],
        cwd=cwd,
        env=plain_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_default_install_has_the_sdk_and_no_extra(venv: Path, tmp_path: Path) -> None:
    sdk = python(venv, "import chatd.client, protocol; print(chatd.client.__file__)", tmp_path)
    assert sdk.returncode == 0, sdk.stderr
    assert str(venv.parent) in sdk.stdout, "imported from the venv, not from the tree"
    for module in ("asyncpg", "redis", "hdrh"):
        missing = python(venv, f"import {module}", tmp_path)
        assert missing.returncode == 1
        assert f"No module named '{module}'" in missing.stderr
    run(venv / "pip", "check", cwd=tmp_path, env=plain_env())
    version = run(venv / "chatd", "--version", cwd=tmp_path, env=plain_env())
    assert re.fullmatch(r"chatd \d+\.\d+\.\d+\S* \(protocol \S+\)\n", version), version


def test_the_default_install_serves_sqlite(venv: Path, tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [venv / "chatd", "serve", "--port", str(port), "--db", "chatd.db"],
        cwd=tmp_path,
        env={**plain_env(), "CHATD_SECRET": SECRET},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, server.communicate()[0]
            assert time.monotonic() < deadline, "no /healthz within 30 s"
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5)
                if health.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == 0, out
    assert (tmp_path / "chatd.db").exists()


@pytest.mark.parametrize(
    ("argv", "extra"),
    [
        (["serve", "--store", "postgresql://chatd@127.0.0.1:9/chatd"], "postgres"),
        (["export", "--store", "postgres://chatd@127.0.0.1:9/chatd"], "postgres"),
        (["migrate", "--store", "postgresql://chatd@127.0.0.1:9/chatd"], "postgres"),
        (["serve", "--hub", "redis://127.0.0.1:9/0"], "redis"),
        (["bench", "--quick"], "loadtest"),
        (["replay", "x.log"], "loadtest"),
    ],
)
def test_a_choice_that_needs_an_extra_says_which(
    venv: Path, tmp_path: Path, argv: list[str], extra: str
) -> None:
    done = subprocess.run(
        [venv / "chatd", *argv],
        cwd=tmp_path,
        env={**plain_env(), "CHATD_SECRET": SECRET},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"chatd {argv[0]}: ") and f"pip install 'chatd[{extra}]'" in line


def test_the_image_installs_the_locked_dependencies_before_the_source() -> None:
    steps = [
        line
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith(("COPY", "RUN"))
    ]
    lock = steps.index("COPY constraints.txt ./")
    assert steps[lock + 1] == "RUN pip install --requirement constraints.txt"
    source = next(i for i, step in enumerate(steps) if step.startswith("COPY chatd"))
    assert lock < source
