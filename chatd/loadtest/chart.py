"""A self-contained HTML page with inline SVG: latency over time (p50, p99 and max of each
interval, on a log scale) and the delivered rate, under a table of the run's figures."""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence

from chatd.loadtest.timeline import Bucket

WIDTH, HEIGHT = 900, 300
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 20, 40
SERIES: tuple[tuple[str, str, Callable[[Bucket], float]], ...] = (
    ("p50", "#1f77b4", lambda b: b.p50_ms),
    ("p99", "#ff7f0e", lambda b: b.p99_ms),
    ("max", "#d62728", lambda b: b.max_ms),
)


def _x_scale(rows: Sequence[Bucket]) -> Callable[[float], float]:
    end = max((b.start + b.width for b in rows), default=1.0)

    def x(t: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * t / end

    return x


def _x_axis(rows: Sequence[Bucket], x: Callable[[float], float]) -> list[str]:
    end = max((b.start + b.width for b in rows), default=1.0)
    step = _nice_step(end / 8)
    parts = []
    t = 0.0
    while t <= end + 1e-9:
        parts.append(
            f'<line x1="{x(t):.1f}" y1="{HEIGHT - BOTTOM}" x2="{x(t):.1f}" '
            f'y2="{HEIGHT - BOTTOM + 5}" stroke="#444"/>'
            f'<text x="{x(t):.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle">{t:g}</text>'
        )
        t += step
    parts.append(
        f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 5}" text-anchor="middle">'
        "seconds since the start (by due time)</text>"
    )
    return parts


def _nice_step(raw: float) -> float:
    if raw <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return float(factor * power)
    return float(10 * power)


def _frame(body: list[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">'
        f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" '
        f'height="{HEIGHT - TOP - BOTTOM}" fill="#fafafa" stroke="#888"/>'
        f'<text x="14" y="{(TOP + HEIGHT - BOTTOM) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 14 {(TOP + HEIGHT - BOTTOM) / 2})">{html.escape(label)}</text>'
        + "".join(body)
        + "</svg>"
    )


def latency_svg(rows: Sequence[Bucket]) -> str:
    filled = [b for b in rows if b.count]
    if not filled:
        return _frame(['<text x="400" y="150">no deliveries</text>'], "latency, ms")
    low = max(0.01, min(min(b.p50_ms for b in filled), 1.0))
    high = max(b.max_ms for b in filled) * 1.2
    low_exp, high_exp = math.floor(math.log10(low)), math.ceil(math.log10(max(high, low * 10)))
    x = _x_scale(rows)

    def y(ms: float) -> float:
        span = HEIGHT - TOP - BOTTOM
        value = math.log10(max(ms, 10**low_exp))
        return HEIGHT - BOTTOM - span * (value - low_exp) / (high_exp - low_exp)

    body = _x_axis(rows, x)
    for exp in range(low_exp, high_exp + 1):
        value = 10.0**exp
        body.append(
            f'<line x1="{LEFT}" y1="{y(value):.1f}" x2="{WIDTH - RIGHT}" y2="{y(value):.1f}" '
            f'stroke="#ddd"/><text x="{LEFT - 6}" y="{y(value) + 4:.1f}" '
            f'text-anchor="end">{value:g}</text>'
        )
    for index, (name, color, value_of) in enumerate(SERIES):
        points = " ".join(f"{x(b.start + b.width / 2):.1f},{y(value_of(b)):.1f}" for b in filled)
        body.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{points}"/>'
            f'<rect x="{LEFT + 10 + index * 70}" y="{TOP + 8}" width="12" height="3" '
            f'fill="{color}"/><text x="{LEFT + 26 + index * 70}" y="{TOP + 13}">{name}</text>'
        )
    return _frame(body, "latency, ms (log scale)")


def rate_svg(rows: Sequence[Bucket]) -> str:
    if not rows:
        return _frame([], "deliveries per second")
    top = max(b.rate for b in rows) * 1.1 or 1.0
    x = _x_scale(rows)

    def y(rate: float) -> float:
        return HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * rate / top

    body = _x_axis(rows, x)
    step = _nice_step(top / 5)
    value = 0.0
    while value <= top:
        body.append(
            f'<line x1="{LEFT}" y1="{y(value):.1f}" x2="{WIDTH - RIGHT}" y2="{y(value):.1f}" '
            f'stroke="#ddd"/><text x="{LEFT - 6}" y="{y(value) + 4:.1f}" '
            f'text-anchor="end">{value:,.0f}</text>'
        )
        value += step
    for b in rows:
        left, right = x(b.start), x(b.start + b.width)
        body.append(
            f'<rect x="{left:.1f}" y="{y(b.rate):.1f}" width="{max(0.5, right - left - 0.5):.1f}" '
            f'height="{HEIGHT - BOTTOM - y(b.rate):.1f}" fill="#2ca02c"/>'
        )
    return _frame(body, "deliveries per second")


def render_html(title: str, summary: Sequence[tuple[str, str]], rows: Sequence[Bucket]) -> str:
    cells = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in summary
    )
    return (
        "<!doctype html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:24px}table{border-collapse:collapse}"
        "th,td{padding:2px 10px;text-align:left;border-bottom:1px solid #eee}"
        "th{font-weight:normal;color:#555}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><table>{cells}</table>"
        f"<h2>Latency of deliveries</h2>{latency_svg(rows)}"
        f"<h2>Delivered</h2>{rate_svg(rows)}"
        "</body></html>\n"
    )
