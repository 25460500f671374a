"""What `chatd bench` prints: the figures of every server side by side, the ratios of
chatd to the floor, and the goals; and the same as JSON."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from chatd.loadtest.bench import BenchConfig, ServerFigures
from chatd.loadtest.fleet import LoadResult

KIB = 1024.0
# Delivered messages per server CPU-second, as a share of the floor's in the same run.
GOAL_SHARE_OF_FLOOR = 0.5
# Offered msg/s over the bench's chats: (p99 at most, in ms; share delivered at least).
GOAL_LOADS: dict[float, tuple[float, float]] = {
    1000.0: (15.0, 1.0),
    2500.0: (30.0, 1.0),
    5000.0: (75.0, 0.95),
}
GOAL_IDLE_KIB = 24.0
GOAL_CATCH_UP_S = 0.5

Cell = float | None


def _per_cpu_second(load: LoadResult) -> float | None:
    """Delivered messages per second of server CPU: steadier than the rate on a machine
    that other work shares."""
    return load.delivered_per_s / load.server_cpu if load.server_cpu > 0 else None


def _load_at(figures: ServerFigures, rate: float) -> LoadResult | None:
    return next((r for r in figures.loads if r.offered_per_s == rate), None)


def _rows(config: BenchConfig) -> list[tuple[str, Callable[[ServerFigures], Cell], bool]]:
    """(label, value of a server, higher is better)."""
    rows: list[tuple[str, Callable[[ServerFigures], Cell], bool]] = [
        (
            "sustained delivered msg/s",
            lambda s: s.sustained.delivered_per_s if s.sustained else None,
            True,
        ),
        (
            "  delivered per server CPU-second",
            lambda s: _per_cpu_second(s.sustained) if s.sustained else None,
            True,
        ),
        (
            "  server CPU during it, %",
            lambda s: s.sustained.server_cpu * 100 if s.sustained else None,
            False,
        ),
        (
            "  generator CPU during it, %",
            lambda s: s.sustained.client_cpu * 100 if s.sustained else None,
            False,
        ),
        (
            "  errors, closed sockets during it",
            lambda s: float(sum(s.sustained.errors.values())) if s.sustained else None,
            False,
        ),
    ]
    for rate in config.loads:

        def at(key: str, rate: float = rate) -> Callable[[ServerFigures], Cell]:
            def value(s: ServerFigures) -> Cell:
                load = _load_at(s, rate)
                if load is None:
                    return None
                if key == "missing":
                    return float(load.missing)
                if key == "errors":
                    return float(sum(load.errors.values()))
                return float(load.latency[key])

            return value

        rows.append((f"p50 latency @ {rate:,.0f} msg/s, ms", at("p50"), False))
        rows.append((f"p99 latency @ {rate:,.0f} msg/s, ms", at("p99"), False))
        rows.append((f"  undelivered @ {rate:,.0f} msg/s", at("missing"), False))
        rows.append((f"  errors, closed sockets @ {rate:,.0f} msg/s", at("errors"), False))
    rows.append(
        (
            f"memory per idle connection, KiB ({config.idle})",
            lambda s: s.idle.per_connection / KIB if s.idle else None,
            False,
        )
    )
    rows.append(
        (
            f"catch-up of {config.missed} missed events, s",
            lambda s: s.catch_up.median if s.catch_up else None,
            False,
        )
    )
    return rows


def _cell(value: Cell) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def render(config: BenchConfig, results: list[ServerFigures]) -> str:
    floor = next((r for r in results if r.label == "floor"), None)
    chatds = [r for r in results if r.label != "floor"]
    heads = [r.label for r in results] + [f"{_short(c.label)}/floor" for c in chatds if floor]
    lines = [
        f"chatd bench: {config.chats} chats ({2 * config.chats} sockets), server on CPUs "
        f"{_cpus(config.server_cpus)}, load generator on {_cpus(config.client_cpus)}",
        "",
        f"{'':44}" + "".join(f"{h:>15}" for h in heads),
    ]
    for label, value_of, _ in _rows(config):
        cells = [_cell(value_of(r)) for r in results]
        if floor is not None:
            for chatd in chatds:
                mine, theirs = value_of(chatd), value_of(floor)
                ratio = mine / theirs if mine is not None and theirs else None
                ratio_row = not label.startswith("  ") or "per server CPU" in label
                cells.append(_cell(ratio) if ratio_row else "")
        lines.append(f"{label:44}" + "".join(f"{c:>15}" for c in cells))
    for result in results:
        for error in result.errors:
            lines.append(f"{result.label}: {error}")
    lines += ["", "goals:"] + [f"  {g}" for g in goals(config, results)]
    return "\n".join(lines)


def _short(label: str) -> str:
    """chatd(full) -> full"""
    return label.removeprefix("chatd(").removesuffix(")")


def _cpus(cpus: set[int] | None) -> str:
    return ",".join(str(c) for c in sorted(cpus)) if cpus else "any"


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def goals(config: BenchConfig, results: list[ServerFigures]) -> list[str]:
    floor = next((r for r in results if r.label == "floor"), None)
    lines: list[str] = []
    for chatd in (r for r in results if r.label != "floor"):
        if chatd.sustained and floor and floor.sustained:
            mine, theirs = _per_cpu_second(chatd.sustained), _per_cpu_second(floor.sustained)
            share = mine / theirs if mine is not None and theirs else 0.0
            lines.append(
                f"{chatd.label}: delivered per server CPU-second {share * 100:.0f}% of the "
                f"floor's (goal ≥ {GOAL_SHARE_OF_FLOOR * 100:.0f}%): "
                f"{_verdict(share >= GOAL_SHARE_OF_FLOOR)}"
            )
        for rate, (p99_goal, delivered_goal) in GOAL_LOADS.items():
            load = _load_at(chatd, rate)
            if load is None:
                continue
            p99 = float(load.latency["p99"])
            delivered = load.delivered / load.sent if load.sent else 0.0
            ok = p99 <= p99_goal and delivered >= delivered_goal and not load.errors
            lines.append(
                f"{chatd.label}: at {rate:,.0f} msg/s p99 {p99:g} ms (goal ≤ {p99_goal:g}), "
                f"{delivered * 100:.1f}% delivered (goal ≥ {delivered_goal * 100:g}%): "
                f"{_verdict(ok)}"
            )
        if chatd.idle is not None and config.idle >= 10_000:
            kib = chatd.idle.per_connection / KIB
            lines.append(
                f"{chatd.label}: {kib:.1f} KiB per idle connection at {chatd.idle.connections} "
                f"(goal ≤ {GOAL_IDLE_KIB:g}): {_verdict(kib <= GOAL_IDLE_KIB)}"
            )
        if chatd.catch_up is not None:
            ok = chatd.catch_up.median < GOAL_CATCH_UP_S and chatd.catch_up.complete
            lines.append(
                f"{chatd.label}: catch-up of {chatd.catch_up.missed} in "
                f"{chatd.catch_up.median:.3f} s (goal < {GOAL_CATCH_UP_S:g} s): {_verdict(ok)}"
            )
    if not lines:
        lines.append("no goal applies to these sizes")
    return lines


def as_json(config: BenchConfig, results: list[ServerFigures]) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {k: plain(v) for k, v in dataclasses.asdict(value).items()}
        if isinstance(value, set):
            return sorted(value)
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return str(value) if not isinstance(value, int | float | str | bool | None) else value

    servers = []
    for result in results:
        entry = plain(result)
        if result.idle is not None:
            entry["idle"]["per_connection_kib"] = round(result.idle.per_connection / KIB, 2)
        if result.catch_up is not None:
            entry["catch_up"]["median_s"] = round(result.catch_up.median, 4)
        servers.append(entry)
    return {"config": plain(config), "servers": servers, "goals": goals(config, results)}
