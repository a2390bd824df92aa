"""Small, dependency-free SVG charts for self-contained HTML reports (no CDN, no JavaScript needed to draw).

Each function returns one `<svg class="tc-chart">` string; the report's page script checks that every chart has
a non-empty box once loaded, which the browser test reads back.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

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


def line_chart(series: dict[str, Sequence[tuple[float, float]]], *, title: str, x_label: str = "",
               y_label: str = "", width: int = 560, markers: Sequence[float] = ()) -> str:
    """Lines through (x, y) points, one per series; optional vertical markers (e.g. alarms, drift points)."""
    height, top, bottom, left, right = 280, 40, 44, 64, 20
    points = [p for pts in series.values() for p in pts]
    if not points:
        return _frame(width, height, title, ['<text x="50%" y="50%" class="tc-label">no data</text>'])
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(min(ys), 0.0), max(ys)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    def sy(y: float) -> float:
        return top + plot_h - (y - y0) / (y1 - y0) * plot_h

    body = [f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" class="tc-axis"/>',
            f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" class="tc-axis"/>',
            f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" class="tc-label">{_esc(_fmt(y1))}</text>',
            f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" class="tc-label">{_esc(_fmt(y0))}</text>',
            f'<text x="{left}" y="{height - 24}" class="tc-label">{_esc(_fmt(x0))}</text>',
            f'<text x="{width - right}" y="{height - 24}" text-anchor="end" class="tc-label">{_esc(_fmt(x1))}</text>',
            f'<text x="{left + plot_w / 2:.0f}" y="{height - 6}" text-anchor="middle" class="tc-label">'
            f"{_esc(x_label)}</text>",
            f'<text x="12" y="{top + plot_h / 2:.0f}" transform="rotate(-90 12 {top + plot_h / 2:.0f})" '
            f'text-anchor="middle" class="tc-label">{_esc(y_label)}</text>']
    for marker in markers:
        body.append(f'<line x1="{sx(marker):.1f}" y1="{top}" x2="{sx(marker):.1f}" y2="{top + plot_h}" '
                    'class="tc-marker"/>')
    for s, (name, pts) in enumerate(series.items()):
        color = PALETTE[s % len(PALETTE)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        body.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        body.append(f'<rect x="{left + 10 + s * 140}" y="{top - 14}" width="10" height="10" fill="{color}"/>'
                    f'<text x="{left + 24 + s * 140}" y="{top - 5}" class="tc-label">{_esc(name)}</text>')
    return _frame(width, height, title, body)
