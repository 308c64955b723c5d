"""``--out DIR``: ``report.md`` (the tables and verdicts) and ``accuracy.png`` (accuracy
with its 95% interval against cost per question). The PNG needs matplotlib (the
``.[eval]`` extra); without it the report says so and still has every number."""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

PNG = "accuracy.png"


def write(report: dict[str, Any], out: Path, command: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    png = plot(report, out / PNG)
    if png is not None:
        written.append(png)
    path = out / "report.md"
    path.write_text(markdown(report, command, png is not None))
    written.insert(0, path)
    return written


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def markdown(report: dict[str, Any], command: str, with_png: bool) -> str:
    lines = [
        f"# Evaluation: {report['dataset']}",
        "",
        f"- questions: {report['n']}",
        f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
        f"- machine: {platform.machine()}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}",
        f"- command: `{command}`",
    ]
    if report.get("stopped_by_max_cost"):
        lines.append("- **stopped by --max-cost**: not every question was asked of every system")
    lines += [
        "",
        "| system | kind | n | correct | accuracy | 95% CI (Wilson) | cost (USD) | "
        "cost / question | p50 ms | p95 ms | calls |",
        "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in report["systems"]:
        per_question = s["cost_usd"] / s["n"] if s["n"] else 0.0
        lines.append(
            f"| {s['name']} | {s['kind']} | {s['n']} | {s['correct']} | {_pct(s['accuracy'])} | "
            f"{_pct(s['ci95'][0])} - {_pct(s['ci95'][1])} | {s['cost_usd']:.6f} | "
            f"{per_question:.6f} | {s['latency_ms']['p50'] or '-'} | "
            f"{s['latency_ms']['p95'] or '-'} | {s['calls']} |"
        )
    comparisons = report["comparisons"]
    if comparisons:
        lines += [
            "",
            f"Compared with the best single model, **{comparisons[0]['baseline']}**, on the "
            "same questions (difference in accuracy; 95% paired-bootstrap interval; exact "
            "McNemar p-value):",
            "",
            "| system | n | difference | 95% CI | p | verdict |",
            "| --- | ---: | ---: | --- | ---: | --- |",
        ]
        for c in comparisons:
            lines.append(
                f"| {c['system']} | {c['n']} | {100 * c['delta']:+.1f} pts | "
                f"{100 * c['ci95'][0]:+.1f} - {100 * c['ci95'][1]:+.1f} | "
                f"{c['p_value']:.4g} | {c['verdict']} |"
            )
    lines += recommendation(report)
    if with_png:
        lines += ["", f"![accuracy against cost per question]({PNG})"]
    else:
        lines += ["", "(No plot: matplotlib is not installed; `pip install '.[eval]'`.)"]
    return "\n".join(lines) + "\n"


def recommendation(report: dict[str, Any]) -> list[str]:
    """The report's recommendation: the frontier, the recommended system and why, and
    accuracy against calls for the vote-like systems."""
    advice = report.get("recommendation")
    if not advice:
        return []
    unit = "USD" if advice["cost_basis"] == "usd" else "calls (no prices known)"
    lines = [
        "",
        "## Recommendation",
        "",
        f"- Pareto frontier (accuracy against cost per question, in {unit}), cheapest first: "
        + ", ".join(f"**{name}**" for name in report["frontier"]),
        f"- Recommended: **{advice['system']}** ({_pct(advice['accuracy'])} at "
        f"{_per_question(advice['cost_per_question'], advice['cost_basis'])}): {advice['why']}"
        + (
            "."
            if advice["system"] == advice["best"]
            else f"; the best is {advice['best']} ({_pct(advice['best_accuracy'])} at "
            f"{_per_question(advice['best_cost_per_question'], advice['cost_basis'])})."
        ),
        "- To make it the default pipeline: "
        f"`orchestrctl eval DATASET --apply {advice['system']}`.",
    ]
    curves = report.get("calls_curve") or {}
    if curves:
        lines += [
            "",
            "Accuracy against the number of calls, estimated from the stored answers (a vote "
            "over k of them, every k-subset):",
            "",
            "| system | "
            + " | ".join(f"k = {p['calls']}" for p in _longest(curves))
            + " | worth |",
            "| --- |" + " ---: |" * (len(_longest(curves)) + 1),
        ]
        for name, curve in curves.items():
            cells = [_pct(p["accuracy"]) for p in curve["points"]]
            cells += ["-"] * (len(_longest(curves)) - len(cells))
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {curve['worth']} |")
    return lines


def _per_question(cost: float, basis: str) -> str:
    return f"${cost:.6f} per question" if basis == "usd" else f"{cost:g} calls per question"


def _longest(curves: dict[str, Any]) -> list[dict[str, Any]]:
    return max((c["points"] for c in curves.values()), key=len)


def plot(report: dict[str, Any], path: Path) -> Path | None:
    try:  # deferred: matplotlib is the optional [eval] extra, and slow to import
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for s in report["systems"]:
        if not s["n"]:
            continue
        cost = s["cost_usd"] / s["n"]
        accuracy = s["accuracy"]
        low, high = s["ci95"]
        ax.errorbar(
            [cost],
            [accuracy],
            yerr=[[accuracy - low], [high - accuracy]],
            fmt="o",
            capsize=4,
            label=f"{s['name']} ({s['kind']})",
        )
    ax.set_xlabel("cost per question (USD)")
    ax.set_ylabel("accuracy (95% Wilson interval)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{report['dataset']}: n = {report['n']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
