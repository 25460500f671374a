"""The pieces of logs and metrics without a server: the two log formats, the option types,
the labels that keep metrics bounded, and the families /metrics always has."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import Mount, Route

from chatd.domain.rules import Rules
from chatd.hub.base import HubStats
from chatd.hub.local import LocalHub
from chatd.observability.logs import JsonFormatter, TextFormatter, configure_logging, fields
from chatd.observability.options import networks_arg
from chatd.process.assemble import assemble
from chatd.web.http_observer import route_label
from chatd.web.metrics import Metrics, close_label, method_label


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("chatd.test", logging.WARNING, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def test_a_json_line_has_ts_level_logger_msg_and_the_fields() -> None:
    line = json.loads(
        JsonFormatter().format(
            record("ws closed %s", "s1", **fields(session="s1", code=1000, errors=None))
        )
    )
    assert line.pop("ts").endswith("Z")
    assert line == {
        "level": "warning",
        "logger": "chatd.test",
        "msg": "ws closed s1",
        "session": "s1",
        "code": 1000,
    }


def test_a_field_never_overrides_the_four_a_line_starts_with() -> None:
    line = json.loads(JsonFormatter().format(record("real", **fields(msg="fake", level="x"))))
    assert (line["msg"], line["level"]) == ("real", "warning")


def test_a_traceback_stays_on_the_json_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        failed = record("failed")
        failed.exc_info = sys.exc_info()
    text = JsonFormatter().format(failed)
    assert "\n" not in text
    assert "ValueError: boom" in json.loads(text)["exc"]


def test_other_extras_and_odd_values_do_not_break_a_line() -> None:
    odd = record("x", color_message="\x1b[1mx", **fields(path=Path("/a"), nested={"k": [1]}))
    line = json.loads(JsonFormatter().format(odd))
    assert "color_message" not in line
    assert (line["path"], line["nested"]) == ("/a", {"k": [1]})


def test_a_text_line_puts_the_fields_after_the_message() -> None:
    text = TextFormatter().format(
        record("ws closed", **fields(session="s1", reason="token expired", duration=0.5))
    )
    assert text.endswith('WARNING chatd.test: ws closed session=s1 reason="token expired" '
                         "duration=0.500")  # fmt: skip


def test_configure_logging_replaces_its_handler(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging("info", "text")
        configure_logging("warning", "json")
        assert len(root.handlers) == 1
        logging.getLogger("chatd.test").info("not shown")
        logging.getLogger("chatd.test").warning("shown", extra=fields(a=1))
        err = capsys.readouterr().err.strip().splitlines()
        assert [json.loads(line)["msg"] for line in err] == ["shown"]
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])


def test_metrics_allow_takes_addresses_and_networks_and_names_a_bad_one() -> None:
    assert networks_arg("10.0.0.0/8, ::1,127.0.0.1") == ("10.0.0.0/8", "::1/128", "127.0.0.1/32")
    for bad in ("10.0.0.300/8", "10.1.2.3/8", "localhost", ","):
        with pytest.raises(argparse.ArgumentTypeError):
            networks_arg(bad)


def test_labels_stay_bounded_whatever_clients_send() -> None:
    assert [close_label(c) for c in (1000, 1006, 4001, 4000, 4999, 3000, None)] == [
        "1000", "1006", "4001", "other", "other", "other", "none",
    ]  # fmt: skip
    assert [method_label(m) for m in ("GET", "DELETE", "BREW")] == ["GET", "DELETE", "other"]
    assert route_label(Route("/api/v1/chats/{chat:str}/history", lambda r: None)) == (
        "/api/v1/chats/{chat}/history"
    )
    assert route_label(Mount("/", routes=[])) == "/*"


class _Wal:
    def wal_bytes(self) -> int:
        return 12345

    @property
    def wal_restarts(self) -> int:
        return 2

    @property
    def wal_restart_seconds(self) -> float:
        return 0.25

    @property
    def wal_checkpoints(self) -> int:
        return 40

    @property
    def wal_checkpoint_seconds(self) -> float:
        return 0.5

    @property
    def wal_copies(self) -> int:
        return 7

    @property
    def wal_copy_seconds(self) -> float:
        return 1.5

    @property
    def wal_copy_waits(self) -> int:
        return 3

    @property
    def wal_copy_wait_seconds(self) -> float:
        return 0.75


class _LaggingHub(LocalHub):
    def stats(self) -> HubStats:
        return HubStats(connected=False, reconnections=3, pending=2, oldest_pending=0.0)


def _families(metrics: Metrics) -> dict[str, dict[str, float]]:
    return {
        family.name: {
            sample.name + json.dumps(sample.labels, sort_keys=True): sample.value
            for sample in family.samples
        }
        for family in text_string_to_metric_families(metrics.render().decode())
    }


def test_what_the_store_hub_and_webhooks_report_is_read_at_scrape_time() -> None:
    metrics = Metrics()
    metrics.watch(store=_Wal(), hub=_LaggingHub(), webhooks=_Outcomes())
    got = _families(metrics)
    assert got["chatd_sqlite_wal_bytes"] == {"chatd_sqlite_wal_bytes{}": 12345}
    assert got["chatd_sqlite_wal_restarts"] == {"chatd_sqlite_wal_restarts_total{}": 2}
    assert got["chatd_sqlite_writer_checkpoints"] == {"chatd_sqlite_writer_checkpoints_total{}": 40}
    assert got["chatd_sqlite_writer_checkpoint_seconds"] == {
        "chatd_sqlite_writer_checkpoint_seconds_total{}": 0.5
    }
    assert got["chatd_sqlite_wal_copies"] == {"chatd_sqlite_wal_copies_total{}": 7}
    assert got["chatd_sqlite_wal_copy_seconds"] == {"chatd_sqlite_wal_copy_seconds_total{}": 1.5}
    assert got["chatd_sqlite_wal_copy_waits"] == {"chatd_sqlite_wal_copy_waits_total{}": 3}
    assert got["chatd_sqlite_wal_copy_wait_seconds"] == {
        "chatd_sqlite_wal_copy_wait_seconds_total{}": 0.75
    }
    assert got["chatd_hub_up"] == {"chatd_hub_up{}": 0}
    assert got["chatd_hub_reconnections"] == {"chatd_hub_reconnections_total{}": 3}
    assert got["chatd_hub_lag_seconds"]["chatd_hub_lag_seconds{}"] > 0
    assert got["chatd_webhook_deliveries"] == {
        'chatd_webhook_deliveries_total{"outcome": "failed"}': 1
    }


class _Outcomes:
    def __init__(self) -> None:
        self.outcomes = Counter({"failed": 1})


def test_a_server_exports_its_families_before_anything_happened(tmp_path: Path) -> None:
    app = assemble(db=tmp_path / "chatd.db", secret="s" * 32, rules=Rules())
    names = set(_families(app.metrics))
    assert {
        "process_cpu_seconds", "process_resident_memory_bytes", "python_gc_collections",
        "python_info", "chatd_errors", "chatd_ws_closes", "chatd_http_requests",
        "chatd_http_request_seconds", "chatd_append_batch_size", "chatd_sqlite_wal_bytes",
        "chatd_sqlite_checkpoint_seconds", "chatd_hub_up", "chatd_hub_lag_seconds",
        "chatd_webhook_deliveries", "chatd_build_info", "chatd_event_loop_lag_seconds",
        "chatd_gc_pause_seconds",
    } <= names  # fmt: skip
