"""Coverage-guided fuzzing of decode-and-dispatch with atheris (libFuzzer for Python).

    .venv/bin/pip install atheris
    .venv/bin/python -m tests.fuzz.atheris_dispatch -atheris_runs=200000 [CORPUS_DIR ...]

Each input is one byte that picks a connection (a buyer, two operators, a manager, a stranger;
JSON in text or binary frames, or MessagePack), then the frame. It goes through the real app
in this process (`InProcessServer`: the demo data on SQLite in a temporary directory, a
`LocalHub`), and the checks of `check_outcome` hold for every input: never an `internal`
error (an exception past the codec), exactly one `bad_frame` for what does not decode, no
socket closed. At the end: the log is whole, the socket layer logged no error, and at most
one line about bad frames per connection.

Without a corpus directory, the seed corpus is taken from the demo's log (see
`tests/fuzz/corpus.py`) and written to `$TMPDIR/chatd-fuzz-corpus/` first. libFuzzer's own flags
(`-max_total_time=`, `-jobs=`, ...) pass through.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

DEFAULT_CORPUS = Path(tempfile.gettempdir()) / "chatd-fuzz-corpus"
# Kept referenced until the very end of the process, when libFuzzer exits.
_KEEP: list[Any] = []


def _atheris() -> Any:
    try:
        import atheris  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        print(
            "atheris is not installed: `.venv/bin/pip install atheris` (it ships wheels for "
            "CPython 3.11 on x86-64 Linux). The same checks run without it in "
            "tests/fuzz/test_dispatch.py under hypothesis.",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    return atheris


def main() -> None:
    atheris = _atheris()
    # Coverage is measured in the server's code and the codec, not in the test helpers.
    with atheris.instrument_imports(include=["chatd", "protocol"]):
        from tests.fuzz.corpus import corpus_entries, frames_from_log, write_corpus
        from tests.fuzz.inprocess import PEERS, InProcessServer, check_outcome

    root = Path(tempfile.mkdtemp(prefix="chatd-atheris-"))
    server = InProcessServer(root)
    server.__enter__()
    _KEEP.append(server)
    corpus_dirs = [a for a in sys.argv[1:] if not a.startswith("-")]
    if not corpus_dirs:
        count = write_corpus(corpus_entries(frames_from_log(server.db)), DEFAULT_CORPUS)
        print(f"seed corpus: {count} frames from the demo log in {DEFAULT_CORPUS}/", flush=True)
        sys.argv.append(str(DEFAULT_CORPUS))
    started: list[float] = []

    def one_input(data: bytes) -> None:
        if not started:
            started.append(time.monotonic())
        if not data:
            return
        peer = data[0] % len(PEERS)
        payload = data[1:]
        outcome = server.feed(peer, payload)
        check_outcome(outcome, payload, PEERS[peer].subprotocol)
        if server.frames_fed % 5000 == 0:
            errors = server.log.errors()
            assert not errors, errors
            assert server.log.bad_frame_lines() <= len(PEERS)
            rate = server.frames_fed / (time.monotonic() - started[0])
            print(f"#{server.frames_fed} frames, {rate:.0f}/s, log whole", flush=True)
            server.check_store()

    def report_and_close() -> None:
        try:
            server.check_store()
            errors = server.log.errors()
            lines = server.log.bad_frame_lines()
            elapsed = time.monotonic() - (started[0] if started else time.monotonic())
            print(
                f"{server.frames_fed} frames in {elapsed:.0f} s; socket-layer errors:"
                f" {len(errors)}; bad-frame log lines: {lines} for {len(PEERS)} connections",
                flush=True,
            )
            assert not errors, errors
            assert lines <= len(PEERS)
        finally:
            server.__exit__(None, None, None)

    # libFuzzer ends the process through Python's finalization, which first waits for the
    # store's threads: close the server before that wait (plain atexit runs after it).
    threading._register_atexit(report_and_close)  # type: ignore[attr-defined]
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
