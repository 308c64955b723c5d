"""The bundled datasets on the embedded model (the zero-configuration trio local-1..3:
SmolLM2-135M at three seeds and temperatures), as committed in eval/REPORT.md.

    .venv/bin/python eval/run_local.py --label after --limit 10

Beside each model, ``synthesize``, ``vote``, ``rank`` and ``oracle``, it runs two named
pipelines (issue 23): ``cascade`` (local-1 and local-2 answer; only when they disagree does
the whole trio answer and vote) and ``weighted`` (the trio's vote, each answer weighed by
its model's accuracy measured by this evaluation's single-model jobs, which run first),
and ``sampled`` (local-2 asked three times at temperature 0.8, each call its own seed,
then a vote: self-consistency inside a pipeline).

Writes ``eval/results/LABEL/DATASET/report.md`` and ``accuracy.png`` per dataset, and
``eval/results/LABEL/summary.md``: every system's accuracy per dataset, and how many
synthesized answers carry a defect the issue names (a copied label such as ``C:`` or
``Answer B:``, or a preamble such as ``The best final answer is:``). Answers are kept in
``eval/.state`` (a run store), so an interrupted run resumes and a rerun after a template
change asks only the systems the change can affect.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import actors  # noqa: E402
from actors.daemon.defaults import default_models  # noqa: E402
from actors.evaluation import output  # noqa: E402

DATASETS = ("arithmetic", "geography", "reasoning")
LOCAL = ("local-1", "local-2", "local-3")
PIPELINES = {
    "cascade": {
        "stages": [
            {"kind": "initial", "models": ["local-1", "local-2"]},
            {"kind": "vote", "min_confidence": 1.0, "fallback": "next"},
            {"kind": "initial"},
            {"kind": "vote"},
        ]
    },
    "weighted": {"stages": [{"kind": "initial"}, {"kind": "vote", "weights": "accuracy"}]},
    "sampled": {
        "stages": [
            {"kind": "initial", "models": ["local-2"], "samples": 3, "temperature": 0.8},
            {"kind": "vote"},
        ]
    },
}
SYSTEMS = (*LOCAL, "synthesize", "vote", "rank", *PIPELINES, "oracle")
DEFECT = re.compile(
    r"^\s*(?:\**\s*(?:(?:answer|candidate)\s+)?(?:[A-H]|\d)\s*\**\s*:\s*|[^\n]{0,40}\b(?:best|final)\s+(?:final\s+)?"
    r"answer\b[^\n]{0,40}?(?:is|:))",
    re.IGNORECASE,
)


def defects(orch: actors.Orchestrator, digest: str, since: float) -> tuple[int, int]:
    """(synthesized answers with a copied label or preamble, synthesized answers), counting
    only the jobs this run asked (the state directory is shared by every label)."""
    bad = total = 0
    records = orch.runs(metadata={"eval": digest}, since=since, full=True, limit=10_000)
    for record in records:
        if record.get("strategy") != "synthesize" or record.get("status") != "ok":
            continue
        if not any(r["name"] == "synthesis" for r in record.get("rounds") or ()):
            continue
        total += 1
        bad += bool(DEFECT.match(record.get("answer") or ""))
    return bad, total


def recommendation(name: str, report: dict) -> str:
    """One line: the frontier, the recommendation and, for vote-like systems, the calls worth it."""
    advice = report.get("recommendation") or {}
    curves = report.get("calls_curve") or {}
    worth = ", ".join(f"{s}: {c['worth']} of {len(c['points'])} calls" for s, c in curves.items())
    return (
        f"- {name}: frontier {', '.join(report.get('frontier') or []) or '-'}; recommended "
        f"**{report.get('recommended')}** ({advice.get('why', '-')})"
        + (f"; calls worth paying for: {worth}" if worth else "")
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--label", required=True, help="results go to eval/results/LABEL")
    p.add_argument("--limit", type=int, default=10, help="questions per dataset (10)")
    p.add_argument("--systems", help="comma-separated (default: models, strategies, oracle)")
    p.add_argument("--concurrency", type=int, default=3)
    p.add_argument("--max-tokens", type=int, default=128, help="per reply (128)")
    args = p.parse_args()
    out = ROOT / "eval" / "results" / args.label
    config = {
        "models": [{**m, "max_tokens": args.max_tokens} for m in default_models({})],
        "pipeline": {"quorum": 0},
        "pipelines": PIPELINES,
        "daemon": {"state_dir": str(ROOT / "eval" / ".state")},
    }
    systems = args.systems.split(",") if args.systems else list(SYSTEMS)
    command = "python " + shlex.join(["eval/run_local.py", *sys.argv[1:]])
    lines = [
        f"# {args.label}: the embedded model on the bundled datasets",
        "",
        f"`{command}` at {time.strftime('%Y-%m-%d %H:%M %Z')}, {args.limit} questions each.",
        "",
    ]
    table: dict[str, dict[str, str]] = {}
    advice: list[str] = []
    with actors.start(config) as orch:
        for name in DATASETS:  # first the models alone: the weighted vote needs their accuracy
            path = ROOT / "eval" / "datasets" / f"{name}.jsonl"
            actors.evaluate(orch, path, systems=LOCAL, limit=args.limit, concurrency=3)
        for name in DATASETS:
            started, wall = time.monotonic(), time.time()
            report = actors.evaluate(
                orch,
                ROOT / "eval" / "datasets" / f"{name}.jsonl",
                systems=systems,
                limit=args.limit,
                concurrency=args.concurrency,
            )
            output.write(report, out / name, command)
            (out / name / "report.json").write_text(json.dumps(report, indent=2) + "\n")
            for row in report["systems"]:
                table.setdefault(row["name"], {})[name] = (
                    f"{row['correct']}/{row['n']}" if row["accuracy"] is not None else "-"
                )
            digest = actors.evaluation.load(ROOT / "eval" / "datasets" / f"{name}.jsonl").digest
            advice.append(recommendation(name, report))
            bad, total = defects(orch, digest, wall)
            table.setdefault("synthesis defects", {})[name] = f"{bad}/{total}"
            print(f"{name}: done in {time.monotonic() - started:.0f} s", flush=True)
    lines += ["| system | " + " | ".join(DATASETS) + " |", "| --- |" + " ---: |" * 3]
    for system, cells in table.items():
        lines.append(f"| {system} | " + " | ".join(cells.get(d, "-") for d in DATASETS) + " |")
    lines += [
        "",
        "What each report recommends (cost is calls per question: the local models have no price):",
        "",
    ]
    lines += advice
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print((out / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
