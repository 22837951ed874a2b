"""One chart per disease: weekly cases of the city with the injected outbreaks shaded.

Plain SVG written by hand (no plotting dependency): the observed weekly count of reported
cards by onset week as a line, the baseline expectation as a dashed line, each injected
outbreak as a shaded band from its first to its last onset with its number and kind.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

import numpy as np

from yifang.simulate.engine import SimulationResult

W, H = 1200, 360
LEFT, RIGHT, TOP, BOTTOM = 60, 20, 40, 40
COLOURS = {
    "point_source": "#e6550d", "propagated": "#d62728", "kindergarten": "#9467bd",
    "school": "#2ca02c", "spatial": "#1f77b4",
}  # fmt: skip


def weekly_series(result: SimulationResult, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(observed reported cases, expected baseline) per 7-day block of onset dates."""
    n_days = result.n_days
    cases = result.cases
    sel = (cases["disease"] == key) & cases["reported"]
    daily = np.bincount(cases["onset"][sel], minlength=n_days)[:n_days]
    expected = result.expected[key].sum(axis=0)
    n_weeks = n_days // 7
    obs = daily[: n_weeks * 7].reshape(n_weeks, 7).sum(axis=1)
    exp = expected[: n_weeks * 7].reshape(n_weeks, 7).sum(axis=1)
    return obs, exp


def svg_for(result: SimulationResult, key: str) -> str:
    """The SVG document for disease ``key``."""
    obs, exp = weekly_series(result, key)
    n = max(obs.size, 1)
    ymax = max(float(obs.max(initial=0)), float(exp.max(initial=0)), 1.0) * 1.1
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def x(week: float) -> float:
        return LEFT + pw * week / n

    def y(v: float) -> float:
        return TOP + ph * (1 - v / ymax)

    name = next((d for d in result.diseases if d.key == key), None)
    title = f"{key} — weekly cases by onset, {result.start} … {result.end} (seed {result.seed})"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
        'font-family="sans-serif" font-size="11">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{LEFT}" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    if name is not None:
        parts.append(
            f'<text x="{W - RIGHT}" y="20" text-anchor="end" fill="#555">'
            f"rate {name.rate:g}/100k/yr, "
            f"φ {name.phi:g}</text>"
        )
    for o in result.outbreaks:
        if o.disease_key != key:
            continue
        s = (o.start - result.start).days / 7
        e = (o.end - result.start).days / 7 + 1
        colour = COLOURS.get(o.kind, "#888")
        parts.append(
            f'<rect x="{x(s):.1f}" y="{TOP}" width="{max(x(e) - x(s), 2):.1f}" height="{ph}" '
            f'fill="{colour}" fill-opacity="0.18"/>'
        )
        parts.append(
            f'<text x="{x(s) + 2:.1f}" y="{TOP + 12}" fill="{colour}">#{o.id} {o.kind} '
            f"{o.extra_cases}</text>"
        )
    # axes and ticks
    parts.append(
        f'<line x1="{LEFT}" y1="{TOP + ph}" x2="{LEFT + pw}" y2="{TOP + ph}" stroke="#333"/>'
    )
    parts.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + ph}" stroke="#333"/>')
    step = _nice_step(ymax)
    v = 0.0
    while v <= ymax:
        parts.append(
            f'<line x1="{LEFT - 4}" y1="{y(v):.1f}" x2="{LEFT + pw}" y2="{y(v):.1f}" '
            'stroke="#eee"/>'
        )
        parts.append(f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
        v += step
    for year in range(result.start.year, result.end.year + 2):
        d = (result.start.replace(year=year, month=1, day=1) - result.start).days
        if 0 <= d <= result.n_days:
            parts.append(
                f'<line x1="{x(d / 7):.1f}" y1="{TOP + ph}" x2="{x(d / 7):.1f}" '
                f'y2="{TOP + ph + 5}" stroke="#333"/>'
            )
            parts.append(
                f'<text x="{x(d / 7):.1f}" y="{TOP + ph + 18}" text-anchor="middle">{year}</text>'
            )
    exp_pts = " ".join(f"{x(i + 0.5):.1f},{y(float(v)):.1f}" for i, v in enumerate(exp))
    obs_pts = " ".join(f"{x(i + 0.5):.1f},{y(float(v)):.1f}" for i, v in enumerate(obs))
    parts.append(f'<polyline points="{exp_pts}" fill="none" stroke="#999" stroke-dasharray="4 3"/>')
    parts.append(f'<polyline points="{obs_pts}" fill="none" stroke="#111" stroke-width="1.2"/>')
    parts.append(
        f'<text x="{LEFT + 8}" y="{H - 8}" fill="#555">solid: reported cases per week; dashed: '
        "baseline expectation; bands: injected outbreaks (first to last onset)</text>"
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _nice_step(ymax: float) -> float:
    raw = ymax / 5
    mag = 10 ** np.floor(np.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return float(m * mag)
    return float(10 * mag)


def write_plots(result: SimulationResult, out_dir: Path) -> list[Path]:
    """Write ``<disease>.svg`` for every simulated disease into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for d in result.diseases:
        p = out_dir / f"{d.key}.svg"
        p.write_text(svg_for(result, d.key), encoding="utf-8")
        paths.append(p)
    return paths
