"""Small charts as inline SVG geometry (no script, no remote file): the templates draw
what these functions compute, and each chart also has its numbers as a table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

WIDTH, HEIGHT, PAD = 320.0, 90.0, 6.0


def line(values: Sequence[float | None]) -> dict[str, Any] | None:
    """A line through ``values`` (gaps where None), scaled to the chart: ``points`` for
    a polyline per unbroken run, ``max`` for the label. None without any value."""
    known = [v for v in values if v is not None]
    if not known:
        return None
    top = max(known) or 1.0
    step = (WIDTH - 2 * PAD) / max(1, len(values) - 1)
    runs: list[list[str]] = [[]]
    dots = []
    for i, value in enumerate(values):
        if value is None:
            if runs[-1]:
                runs.append([])
            continue
        x = PAD + i * step
        y = HEIGHT - PAD - (value / top) * (HEIGHT - 2 * PAD)
        runs[-1].append(f"{x:.1f},{y:.1f}")
        dots.append((round(x, 1), round(y, 1)))
    return {
        "runs": [" ".join(r) for r in runs if r],
        "dots": dots,
        "max": top,
        "width": WIDTH,
        "height": HEIGHT,
    }


def scatter(points: Sequence[tuple[str, float, float]]) -> dict[str, Any] | None:
    """(label, cost, accuracy) points on cost (x, from 0) against accuracy (y, 0..1)."""
    if not points:
        return None
    width, height, pad, labels = 480.0, 260.0, 40.0, 110.0  # room for names on the right
    right = max(p[1] for p in points) or 1.0
    dots = [
        {
            "label": label,
            "x": round(pad + (cost / right) * (width - 2 * pad - labels), 1),
            "y": round(height - pad - accuracy * (height - 2 * pad), 1),
            "cost": cost,
            "accuracy": accuracy,
        }
        for label, cost, accuracy in points
    ]
    axis_end = width - pad - labels
    return {
        "dots": dots,
        "width": width,
        "height": height,
        "pad": pad,
        "axis_end": axis_end,
        "max_cost": right,
    }
