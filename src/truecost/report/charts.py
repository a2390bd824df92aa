"""Small, dependency-free SVG charts for self-contained HTML reports (no CDN, no JavaScript needed to draw).

Each function returns one `<svg class="tc-chart">` string; the report's page script checks that every chart has
a non-empty box once loaded, which the browser test reads back.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563")


def _fmt(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 1e9:
        return f"{value / 1e9:.3g}B"
    if magnitude >= 1e6:
        return f"{value / 1e6:.3g}M"
    if magnitude >= 1e4:
        return f"{value / 1e3:.3g}k"
    if magnitude >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _frame(width: int, height: int, title: str, body: list[str]) -> str:
    head = f'<text x="{width / 2:.0f}" y="18" text-anchor="middle" class="tc-title">{_esc(title)}</text>'
    return (f'<svg class="tc-chart" role="img" aria-label="{_esc(title)}" xmlns="http://www.w3.org/2000/svg" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">{head}{"".join(body)}</svg>')


def bar_chart(labels: Sequence[str], values: Sequence[float], *, title: str, unit: str = "",
              width: int = 560, colors: Sequence[str] | None = None) -> str:
    """Horizontal bars, one per label, with the value printed at the end of each bar."""
    if len(labels) != len(values):
        raise ValueError("labels and values differ in length")
    row, top = 26, 30
    # Room for the longest label (~6.5 px a character at 11.5 px), so no label is cut off.
    left = int(min(max((len(str(label)) for label in labels), default=10) * 6.5 + 16, 360))
    width = max(width, left + 260)
    height = top + row * max(len(values), 1) + 10
    span = max((abs(v) for v in values), default=0.0) or 1.0
    plot = width - left - 90
    body = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + i * row
        bar = max(abs(value) / span * plot, 1.0)
        color = (colors or PALETTE)[i % len(colors or PALETTE)]
        body.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end" class="tc-label">{_esc(label)}</text>')
        body.append(f'<rect x="{left}" y="{y + 3}" width="{bar:.1f}" height="{row - 8}" fill="{color}">'
                    f'<title>{_esc(label)}: {_esc(_fmt(value))}{_esc(unit)}</title></rect>')
        body.append(f'<text x="{left + bar + 5:.1f}" y="{y + 15}" class="tc-value">{_esc(_fmt(value))}{_esc(unit)}'
                    "</text>")
    return _frame(width, height, title, body)


def grouped_bar_chart(categories: Sequence[str], series: dict[str, Sequence[float]], *, title: str,
                      unit: str = "", width: int = 560) -> str:
    """Vertical bars: for each category, one bar per series (e.g. poorly vs well prepared), with a legend."""
    names = list(series)
    if any(len(series[n]) != len(categories) for n in names):
        raise ValueError("every series needs one value per category")
    height, top, bottom, left = 300, 44, 60, 60
    plot_h, plot_w = height - top - bottom, width - left - 20
    span = max((abs(v) for n in names for v in series[n]), default=0.0) or 1.0
    group_w = plot_w / max(len(categories), 1)
    bar_w = group_w * 0.8 / max(len(names), 1)
    body = [f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 20}" y2="{top + plot_h}" class="tc-axis"/>']
    for s, name in enumerate(names):
        color = PALETTE[s % len(PALETTE)]
        body.append(f'<rect x="{left + s * 150}" y="26" width="10" height="10" fill="{color}"/>'
                    f'<text x="{left + s * 150 + 14}" y="35" class="tc-label">{_esc(name)}</text>')
        for c, value in enumerate(series[name]):
            bar_h = max(abs(value) / span * plot_h, 1.0)
            x = left + c * group_w + group_w * 0.1 + s * bar_w
            y = top + plot_h - bar_h
            body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{bar_h:.1f}" fill="{color}">'
                        f"<title>{_esc(categories[c])}, {_esc(name)}: {_esc(_fmt(value))}{_esc(unit)}</title></rect>")
            body.append(f'<text x="{x + bar_w / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" class="tc-value">'
                        f"{_esc(_fmt(value))}</text>")
    for c, category in enumerate(categories):
        x = left + c * group_w + group_w / 2
        body.append(f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle" class="tc-label">'
                    f"{_esc(category)}</text>")
    return _frame(width, height, title, body)


@dataclass(frozen=True)
class Panel:
    """One plot of a stacked line chart: series of (x, y) points (NaN breaks a line), shaded x-ranges (e.g.
    alarm windows) and horizontal reference levels (e.g. an alarm threshold)."""

    title: str
    series: dict[str, Sequence[tuple[float, float]]]
    bands: Sequence[tuple[float, float]] = ()
    levels: Sequence[float] = ()
    y_label: str = ""
    points: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # labelled single points


def line_chart(series: dict[str, Sequence[tuple[float, float]]], *, title: str, x_label: str = "",
               y_label: str = "", width: int = 560, markers: Sequence[float] = (),
               points: Mapping[str, tuple[float, float]] | None = None) -> str:
    """Lines through (x, y) points, one per series; optional vertical markers (e.g. alarms, drift points) and
    labelled single points (e.g. the models a frontier is compared with)."""
    panel = Panel("", series, y_label=y_label, points=dict(points or {}))
    width = max(width, 150 * len(series) + 80)  # room for the legend, 150 px a series
    body, height = _panels([panel], width=width, x_label=x_label, markers=markers)
    return _frame(width, height, title, body)


def stacked_line_chart(panels: Sequence[Panel], *, title: str, x_label: str = "", width: int = 640) -> str:
    """Several line plots sharing one x axis, stacked in one chart (small multiples)."""
    body, height = _panels(panels, width=width, x_label=x_label)
    return _frame(width, height, title, body)


def _finite(value: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _panels(panels: Sequence[Panel], *, width: int, x_label: str, markers: Sequence[float] = ()
            ) -> tuple[list[str], int]:
    """The body of a stacked chart and its height; every panel shares the x range."""
    left, right, panel_h, gap, top = 64, 20, 190, 34, 40
    xs = [x for p in panels for pts in [*p.series.values(), p.points.values()] for x, y in pts if _finite(x)]
    xs += [b for p in panels for band in p.bands for b in band]
    if not xs:
        return ['<text x="50%" y="50%" class="tc-label">no data</text>'], 120
    x0, x1 = min(xs), max(xs)
    x1 = x1 if x1 > x0 else x0 + 1
    plot_w = width - left - right

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    body: list[str] = []
    for i, panel in enumerate(panels):
        body += _panel(panel, sx, top + i * (panel_h + gap), panel_h, left, width - right, markers)
    bottom = top + len(panels) * (panel_h + gap) - gap
    body += [f'<text x="{left}" y="{bottom + 16}" class="tc-label">{_esc(_fmt(x0))}</text>',
             f'<text x="{width - right}" y="{bottom + 16}" text-anchor="end" class="tc-label">{_esc(_fmt(x1))}'
             "</text>",
             f'<text x="{left + plot_w / 2:.0f}" y="{bottom + 32}" text-anchor="middle" class="tc-label">'
             f"{_esc(x_label)}</text>"]
    return body, bottom + 40


def _panel(panel: Panel, sx: Callable[[float], float], top: float, plot_h: float, left: float, right: float,
           markers: Sequence[float]) -> list[str]:
    """One panel: axes, shaded bands, reference levels, markers, lines and legend."""
    ys = [y for pts in [*panel.series.values(), panel.points.values()] for _, y in pts if _finite(y)]
    ys += list(panel.levels)
    y0, y1 = min([*ys, 0.0]), max(ys, default=1.0)
    y1 = y1 if y1 > y0 else y0 + 1

    def sy(y: float) -> float:
        return top + plot_h - (y - y0) / (y1 - y0) * plot_h

    mid = top + plot_h / 2
    body = [f'<line x1="{left}" y1="{top + plot_h}" x2="{right}" y2="{top + plot_h}" class="tc-axis"/>',
            f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" class="tc-axis"/>',
            f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" class="tc-label">{_esc(_fmt(y1))}</text>',
            f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" class="tc-label">{_esc(_fmt(y0))}</text>',
            f'<text x="12" y="{mid:.0f}" transform="rotate(-90 12 {mid:.0f})" text-anchor="middle" '
            f'class="tc-label">{_esc(panel.y_label)}</text>']
    if panel.title:
        body.append(f'<text x="{left + 4}" y="{top - 6}" class="tc-label tc-panel">{_esc(panel.title)}</text>')
    for a, b in panel.bands:
        body.append(f'<rect x="{sx(a):.1f}" y="{top}" width="{max(sx(b) - sx(a), 1.0):.1f}" height="{plot_h}" '
                    'class="tc-band"/>')
    for level in panel.levels:
        body.append(f'<line x1="{left}" y1="{sy(level):.1f}" x2="{right}" y2="{sy(level):.1f}" class="tc-level"/>')
    for marker in markers:
        body.append(f'<line x1="{sx(marker):.1f}" y1="{top}" x2="{sx(marker):.1f}" y2="{top + plot_h}" '
                    'class="tc-marker"/>')
    for s, (name, pts) in enumerate(panel.series.items()):
        color = PALETTE[s % len(PALETTE)]
        for run in _runs(pts):
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in run)
            shape = "polyline" if len(run) > 1 else "circle"
            body.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>'
                        if shape == "polyline" else
                        f'<circle cx="{sx(run[0][0]):.1f}" cy="{sy(run[0][1]):.1f}" r="3" fill="{color}"/>')
        legend_x = right - 150 * (len(panel.series) - s)
        body.append(f'<rect x="{legend_x}" y="{top - 15}" width="10" height="10" fill="{color}"/>'
                    f'<text x="{legend_x + 14}" y="{top - 6}" class="tc-label">{_esc(name)}</text>')
    for label, (x, y) in panel.points.items():
        if _finite(x) and _finite(y):
            body.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4" class="tc-point">'
                        f"<title>{_esc(label)}: {_esc(_fmt(x))}, {_esc(_fmt(y))}</title></circle>"
                        f'<text x="{sx(x) + 6:.1f}" y="{sy(y) - 6:.1f}" class="tc-label">{_esc(label)}</text>')
    return body


def _runs(points: Sequence[tuple[float, float]]) -> list[list[tuple[float, float]]]:
    """Split a series at non-finite values, so a gap in the data is a gap in the line."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if _finite(x) and _finite(y):
            runs[-1].append((x, y))
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if r]


def signed_bar_chart(labels: Sequence[str], values: Sequence[float], *, title: str, unit: str = "",
                     width: int = 620, colors: Sequence[str] | None = None) -> str:
    """Horizontal bars from a zero line: positive to the right, negative to the left (e.g. shares of a difference
    that some inputs lower)."""
    if len(labels) != len(values):
        raise ValueError("labels and values differ in length")
    row, top = 26, 30
    left = int(min(max((len(str(label)) for label in labels), default=10) * 6.5 + 16, 300))
    lo, hi = min([*values, 0.0]), max([*values, 0.0])
    span = (hi - lo) or 1.0
    plot = width - left - 150
    zero = left + 70 + (0.0 - lo) / span * plot
    body = [f'<line x1="{zero:.1f}" y1="{top - 4}" x2="{zero:.1f}" y2="{top + row * len(values)}" '
            'class="tc-axis"/>']
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + i * row
        start, end = sorted((zero, zero + value / span * plot))
        color = (colors or PALETTE)[i % len(colors or PALETTE)]
        text_x, anchor = (end + 5, "start") if value >= 0 else (start - 5, "end")
        body.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end" class="tc-label">{_esc(label)}</text>')
        body.append(f'<rect x="{start:.1f}" y="{y + 3}" width="{max(end - start, 1.0):.1f}" height="{row - 8}" '
                    f'fill="{color}"><title>{_esc(label)}: {_esc(_fmt(value))}{_esc(unit)}</title></rect>')
        body.append(f'<text x="{text_x:.1f}" y="{y + 15}" text-anchor="{anchor}" class="tc-value">'
                    f"{_esc(_fmt(value))}{_esc(unit)}</text>")
    return _frame(width, top + row * max(len(values), 1) + 10, title, body)


def tornado_chart(rows: Sequence[tuple[str, float, float]], base: float, *, title: str, unit: str = "",
                  width: int = 680) -> str:
    """A tornado chart: for each (label, result at the low end, result at the high end) a bar spanning the two,
    around a vertical line at `base` (the headline), widest first as given."""
    row, top = 26, 36
    left = int(min(max((len(str(r[0])) for r in rows), default=10) * 6.5 + 16, 320))
    values = [v for r in rows for v in r[1:]] + [base]
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    plot = width - left - 120

    def sx(v: float) -> float:
        return left + 55 + (v - lo) / span * plot

    height = top + row * max(len(rows), 1) + 24
    body = [f'<line x1="{sx(base):.1f}" y1="{top - 6}" x2="{sx(base):.1f}" y2="{height - 20}" class="tc-marker"/>',
            f'<text x="{sx(base):.1f}" y="{height - 6}" text-anchor="middle" class="tc-label">'
            f"{_esc(_fmt(base))}{_esc(unit)}</text>"]
    for i, (label, at_low, at_high) in enumerate(rows):
        y = top + i * row
        body.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end" class="tc-label">{_esc(label)}</text>')
        for end, color in ((at_low, PALETTE[0]), (at_high, PALETTE[1])):
            start, stop = sorted((sx(base), sx(end)))
            body.append(f'<rect x="{start:.1f}" y="{y + 3}" width="{max(stop - start, 1.0):.1f}" height="{row - 8}" '
                        f'fill="{color}" opacity="0.8"><title>{_esc(label)}: {_esc(_fmt(end))}{_esc(unit)}</title>'
                        "</rect>")
        low_x, high_x = sorted((sx(at_low), sx(at_high)))
        body.append(f'<text x="{low_x - 4:.1f}" y="{y + 15}" text-anchor="end" class="tc-value">'
                    f"{_esc(_fmt(min(at_low, at_high)))}</text>"
                    f'<text x="{high_x + 4:.1f}" y="{y + 15}" class="tc-value">{_esc(_fmt(max(at_low, at_high)))}'
                    "</text>")
    body.append(f'<rect x="{left}" y="{top - 24}" width="10" height="10" fill="{PALETTE[0]}"/><text x="{left + 14}" '
                f'y="{top - 15}" class="tc-label">input at the low end</text><rect x="{left + 160}" y="{top - 24}" '
                f'width="10" height="10" fill="{PALETTE[1]}"/><text x="{left + 174}" y="{top - 15}" '
                'class="tc-label">at the high end</text>')
    return _frame(width, height, title, body)


def interval_chart(labels: Sequence[str], values: Sequence[float], lows: Sequence[float | None],
                   highs: Sequence[float | None], *, title: str, domain: tuple[float, float] = (0.0, 1.0),
                   bad: Sequence[bool] | None = None, ideals: Sequence[float | None] | None = None,
                   width: int = 640) -> str:
    """Bars from zero to each value with its 95% interval as a whisker, on a fixed domain (e.g. 0..1 rates)."""
    row, top = 24, 30
    left = int(min(max((len(str(label)) for label in labels), default=10) * 6.5 + 16, 300))
    lo, hi = domain
    plot = width - left - 20

    def sx(v: float) -> float:
        return left + (min(max(v, lo), hi) - lo) / (hi - lo) * plot

    height = top + row * max(len(values), 1) + 24
    body = []
    for tick in (lo, (lo + hi) / 2, hi):
        body.append(f'<line x1="{sx(tick):.1f}" y1="{top - 4}" x2="{sx(tick):.1f}" y2="{height - 20}" '
                    f'class="tc-grid"/><text x="{sx(tick):.1f}" y="{height - 6}" text-anchor="middle" '
                    f'class="tc-label">{tick:g}</text>')
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y, mid = top + i * row, top + i * row + row / 2
        start, end = sorted((sx(0.0 if lo <= 0.0 <= hi else lo), sx(value)))
        color = PALETTE[1] if bad and bad[i] else PALETTE[0]
        body.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end" class="tc-label">{_esc(label)}</text>'
                    f'<rect x="{start:.1f}" y="{y + 4}" width="{max(end - start, 1.0):.1f}" height="{row - 9}" '
                    f'fill="{color}" opacity="0.75"><title>{_esc(label)}: {_esc(_fmt(value))}</title></rect>')
        low, high = lows[i], highs[i]
        if low is not None and high is not None and _finite(low) and _finite(high):
            body.append(f'<line x1="{sx(low):.1f}" y1="{mid:.1f}" x2="{sx(high):.1f}" y2="{mid:.1f}" '
                        'class="tc-whisker"/>')
        ideal = ideals[i] if ideals else None
        if ideal is not None:
            body.append(f'<line x1="{sx(ideal):.1f}" y1="{y + 2}" x2="{sx(ideal):.1f}" y2="{y + row - 3}" '
                        'class="tc-ideal"/>')
    return _frame(width, height, title, body)


def histogram_chart(values: Sequence[float], *, title: str, x_label: str = "", bins: int = 20,
                    width: int = 640) -> str:
    """Counts of `values` in equal-width bins, as vertical bars."""
    finite = [v for v in values if _finite(v)]
    height, top, bottom, left = 170, 30, 36, 44
    if not finite:
        return _frame(width, height, title, ['<text x="50%" y="50%" class="tc-label">no data</text>'])
    low, high = min(finite), max(finite)
    span = (high - low) or 1.0
    counts = [0] * bins
    for v in finite:
        counts[min(bins - 1, int((v - low) / span * bins))] += 1
    bar_w, plot_h, peak = (width - left - 10) / bins, height - top - bottom, max(counts)
    body = [f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" class="tc-axis"/>',
            f'<text x="{left - 6}" y="{top + 8}" text-anchor="end" class="tc-label">{peak}</text>',
            f'<text x="{left}" y="{height - bottom + 14}" class="tc-label">{_esc(_fmt(low))}</text>',
            f'<text x="{width - 10}" y="{height - bottom + 14}" text-anchor="end" class="tc-label">'
            f"{_esc(_fmt(high))}</text>",
            f'<text x="{(left + width) / 2:.0f}" y="{height - 4}" text-anchor="middle" class="tc-label">'
            f"{_esc(x_label)}</text>"]
    for i, count in enumerate(counts):
        bar_h = plot_h * count / peak
        body.append(f'<rect x="{left + i * bar_w:.1f}" y="{height - bottom - bar_h:.1f}" width="{bar_w - 1:.1f}" '
                    f'height="{max(bar_h, 0.5):.1f}" fill="{PALETTE[0]}" opacity="0.8"><title>{count}</title></rect>')
    return _frame(width, height, title, body)
