"""The campaign page's results: the funnel as bars and the sent, delivered, opened and
clicked totals over time as an SVG line chart, drawn on the server (no chart library)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from postroom.analytics.schemas import CampaignAnalytics

SERIES = (
    ("sent", "#1f4fd1"),
    ("delivered", "#137333"),
    ("opened", "#a15c00"),
    ("clicked", "#8e24aa"),
)
FUNNEL_STAGES = ("sent", "delivered", "opened", "clicked", "bounced", "complained", "unsubscribed")
WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 28


@dataclass(frozen=True)
class Line:
    name: str
    color: str
    points: str  # SVG polyline points
    total: int


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    lines: list[Line]
    y_ticks: list[tuple[float, int]]  # (y, value)
    x_labels: list[tuple[float, str]]  # (x, label)
    plot: tuple[int, int, int, int]  # left, top, right, bottom


@dataclass(frozen=True)
class Bar:
    name: str
    count: int
    rate: float | None
    share: float  # of sent, 0..1, for the bar's width


def funnel_bars(analytics: CampaignAnalytics) -> list[Bar]:
    sent = analytics.funnel.sent.count
    bars = []
    for name in FUNNEL_STAGES:
        stage = getattr(analytics.funnel, name)
        share = stage.count / sent if sent else 0.0
        bars.append(Bar(name, stage.count, stage.rate, min(share, 1.0)))
    return bars


def totals_chart(analytics: CampaignAnalytics) -> Chart | None:
    """Running totals per series at each bucket of the time series; None before anything
    was sent. The x axis is time, so minute and hour buckets sit where they happened."""
    points = analytics.time_series.points
    if not points:
        return None
    start, end = points[0].at, points[-1].at
    span = max((end - start).total_seconds(), 60.0)
    running = {name: 0 for name, _color in SERIES}
    rows: list[tuple[datetime, dict[str, int]]] = []
    for point in points:
        for name in running:
            running[name] += getattr(point, name)
        rows.append((point.at, dict(running)))
    top = max(max(totals.values()) for _at, totals in rows) or 1
    right, bottom = WIDTH - RIGHT, HEIGHT - BOTTOM

    def x(at: datetime) -> float:
        return LEFT + (right - LEFT) * (at - start).total_seconds() / span

    def y(value: int) -> float:
        return bottom - (bottom - TOP) * value / top

    lines = []
    for name, color in SERIES:
        coords = [(x(at), y(totals[name])) for at, totals in rows]
        if len(coords) == 1:  # a single bucket: a flat stroke, so it is seen
            coords.append((right, coords[0][1]))
        lines.append(
            Line(name, color, " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords), running[name])
        )
    ticks = sorted({0, top // 2, top})
    y_ticks = [(y(value), value) for value in ticks]
    x_labels = [(float(LEFT), _label(start)), (float(right), _label(start, span))]
    return Chart(WIDTH, HEIGHT, lines, y_ticks, x_labels, (LEFT, TOP, right, bottom))


def _label(start: datetime, offset_seconds: float = 0.0) -> str:
    return (start + timedelta(seconds=offset_seconds)).strftime("%d %b %H:%M")
