"""Quality per dollar, simulated (issue 23): models scripted with known per-question
correctness and correlations, run through the whole orchestrator.

- **vote**: three independent models, each right on ``p`` of the questions (a yes/no
  question: a wrong answer is the one wrong answer). The vote's measured accuracy should
  match the binomial majority ``p^3 + 3p^2(1-p)`` (78.4% at p = 0.7) within its 95%
  Wilson interval.
- **cascade**: a cheap pair and an expert trio (25 times dearer per token). Everyone is
  right on the easy ``easy`` share of the questions (so the cheap pair is right together
  on 60% at the default); on the others each expert is right with ``expert`` (else "B"),
  each cheap model with ``hard_right``, otherwise writing a wrong answer of its own (with
  ``shared_wrong``, both write the same wrong answer: correlated errors). The cascade
  ``[initial(cheap), vote(min_confidence = 1, fallback = "next"), initial(experts), vote]``
  against the panel ``[initial(experts), vote]``: accuracy (paired test), cost, and how
  often the gate escalated.

Models are scripted per (model, question) from a seed, so every run answers the same.
``provider="loopback"`` (the benchmark) serves them from an OpenAI-compatible HTTP server
on 127.0.0.1 that the real ``openai`` provider talks to; ``provider="fake"`` (the tests)
scripts the fake provider in-process.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import actors
from actors.evaluation import stats
from bench.scenarios import quiet_logs

RIGHT = "A"
QUESTION = re.compile(r"Question (\d+)\b")
CHEAP_PRICE = {"price_in_per_mtok": 0.1, "price_out_per_mtok": 0.4}
EXPERT_PRICE = {"price_in_per_mtok": 2.5, "price_out_per_mtok": 10.0}
BATCH = 100  # jobs in flight at a time
Script = Callable[[str, int], str]  # (model, question) -> its answer


def _draw(seed: int, *key: Any) -> float:
    return random.Random(":".join(map(str, (seed, *key)))).random()


def independent(seed: int, p: float) -> Script:
    """Each model right with ``p`` on each question, independently; else "B"."""
    return lambda model, q: RIGHT if _draw(seed, model, q) < p else "B"


def cascade_script(
    seed: int, easy: float, hard_right: float, expert: float, shared_wrong: float
) -> Script:
    """The cascade's models (``cheap-*``, ``expert-*``), as the module says."""

    def answer(model: str, q: int) -> str:
        if _draw(seed, "easy", q) < easy:
            return RIGHT  # an easy question: everyone is right
        if model.startswith("expert"):
            return RIGHT if _draw(seed, model, q) < expert else "B"
        if _draw(seed, model, q) < hard_right:
            return RIGHT
        return "C" if _draw(seed, "shared", q) < shared_wrong else f"wrong {model}"

    return answer


# --- the providers ---------------------------------------------------------------------------


def _question(prompt: str) -> int:
    found = QUESTION.search(prompt)
    if found is None:
        raise ValueError("a simulated question names its number")
    return int(found.group(1))


class _Handler(BaseHTTPRequestHandler):
    script: Script

    def do_POST(self) -> None:  # http.server calls it by this name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        text = self.script(body["model"], _question(prompt))
        reply = {
            "id": "chatcmpl-sim",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": len(prompt) // 4,
                "completion_tokens": 2,
                "total_tokens": len(prompt) // 4 + 2,
            },
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def loopback(script: Script) -> Iterator[str]:
    """An OpenAI-compatible server on 127.0.0.1 answering as ``script``; its base URL."""
    handler = type("Handler", (_Handler,), {"script": staticmethod(script)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def models(names: list[str], script: Script, provider: str, base_url: str = "") -> list[dict]:
    out = []
    for name in names:
        price = EXPERT_PRICE if name.startswith("expert") else CHEAP_PRICE
        common = {"name": name, "max_tokens": 16, "max_concurrency": 256, **price}
        if provider == "fake":
            out.append(
                {
                    **common,
                    "provider": "fake",
                    "reply": lambda r, s=script: s(r.participant, _question(r.prompt or "")),
                }
            )
        else:
            out.append({**common, "provider": "openai", "model": name, "base_url": base_url})
    return out


# --- running -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    correct: list[bool]
    cost_usd: float
    calls: int
    escalated: int

    @property
    def accuracy(self) -> float:
        return sum(self.correct) / len(self.correct)


def ask_all(orch: Any, pipeline: str, n: int) -> Run:
    """Questions 0..n-1 through ``pipeline``, ``BATCH`` at a time."""
    correct, cost, calls, escalated = [], 0.0, 0, 0
    for start in range(0, n, BATCH):
        futures = [
            orch.submit(f"Question {q}: yes (A) or no (B)?", pipeline=pipeline)
            for q in range(start, min(n, start + BATCH))
        ]
        for future in futures:
            result = future.get(timeout=120)
            correct.append(result.ok and (result.answer or "").strip() == RIGHT)
            cost += result.cost_usd
            calls += sum(1 for rnd in result.rounds for r in rnd.replies if r.status != "skipped")
            escalated += bool(result.escalations)
    return Run(correct=correct, cost_usd=cost, calls=calls, escalated=escalated)


@contextmanager
def orchestrator(names: list[str], script: Script, provider: str, pipelines: dict) -> Iterator[Any]:
    config = {  # every reply waited for: a cut straggler would be a missing vote
        "pipelines": pipelines,
        "pipeline": {"quorum": 0},
        "daemon": {"max_inflight_jobs": 4 * BATCH},
    }
    if provider == "fake":
        with (
            quiet_logs(),
            actors.start({**config, "models": models(names, script, "fake")}) as orch,
        ):
            yield orch
        return
    with loopback(script) as url, quiet_logs():
        config["models"] = models(names, script, provider, url)
        with actors.start(config, environ={"OPENAI_API_KEY": "sim"}) as orch:
            yield orch


def vote(n: int = 1000, p: float = 0.7, seed: int = 23, provider: str = "fake") -> dict[str, Any]:
    """Three independent models at ``p``, voted: measured against the binomial."""
    names = ["v1", "v2", "v3"]
    pipelines = {"vote3": {"stages": [{"kind": "initial"}, {"kind": "vote"}]}}
    with orchestrator(names, independent(seed, p), provider, pipelines) as orch:
        run = ask_all(orch, "vote3", n)
    right = sum(run.correct)
    low, high = stats.wilson(right, n)
    binomial = p**3 + 3 * p**2 * (1 - p)
    return {
        "n": n,
        "p": p,
        "measured": run.accuracy,
        "ci95": [low, high],
        "binomial": binomial,
        "within": low <= binomial <= high,
        "calls": run.calls,
    }


def cascade(
    n: int = 1000,
    *,
    easy: float = 0.6,
    hard_right: float = 0.3,
    expert: float = 0.9,
    shared_wrong: float = 0.0,
    seed: int = 23,
    provider: str = "fake",
) -> dict[str, Any]:
    """The cascade against the panel on the same questions."""
    cheap, experts = ["cheap-1", "cheap-2"], ["expert-1", "expert-2", "expert-3"]
    pipelines = {
        "panel": {"stages": [{"kind": "initial", "models": experts}, {"kind": "vote"}]},
        "cascade": {
            "stages": [
                {"kind": "initial", "models": cheap},
                {"kind": "vote", "min_confidence": 1.0, "fallback": "next"},
                {"kind": "initial", "models": experts},
                {"kind": "vote"},
            ]
        },
    }
    script = cascade_script(seed, easy, hard_right, expert, shared_wrong)
    with orchestrator(cheap + experts, script, provider, pipelines) as orch:
        panel = ask_all(orch, "panel", n)
        cheap_first = ask_all(orch, "cascade", n)
    only_cascade = sum(c and not p for c, p in zip(cheap_first.correct, panel.correct, strict=True))
    only_panel = sum(p and not c for c, p in zip(cheap_first.correct, panel.correct, strict=True))
    p_value = stats.mcnemar_exact(only_cascade, only_panel)
    delta = cheap_first.accuracy - panel.accuracy
    ci = stats.paired_bootstrap(cheap_first.correct, panel.correct, samples=2000)
    return {
        "n": n,
        "shared_wrong": shared_wrong,
        "panel": {"accuracy": panel.accuracy, "cost_usd": panel.cost_usd, "calls": panel.calls},
        "cascade": {
            "accuracy": cheap_first.accuracy,
            "cost_usd": cheap_first.cost_usd,
            "calls": cheap_first.calls,
            "escalated": cheap_first.escalated / n,
        },
        "cost_ratio": cheap_first.cost_usd / panel.cost_usd,
        "delta": delta,
        "p_value": p_value,
        "verdict": stats.verdict(delta, ci, p_value, n),
    }


def run(quick: bool = False, provider: str = "loopback") -> dict[str, Any]:
    """The benchmark's simulations (``quick``: 200 questions instead of 1,000)."""
    n = 200 if quick else 1000
    return {
        "provider": provider,
        "vote": vote(n, provider=provider),
        "cascades": [cascade(n, provider=provider, shared_wrong=s) for s in (0.0, 0.05)],
    }


def markdown(found: dict[str, Any]) -> list[str]:
    """The results as a report section."""
    v = found["vote"]
    lines = [
        "## Quality per dollar (simulated)",
        "",
        "Scripted models with known correctness (`bench/quality.py`), "
        + (
            "served over loopback HTTP to the real `openai` provider."
            if found["provider"] == "loopback"
            else "scripted in-process (the `fake` provider)."
        ),
        "",
        f"- **Vote of three independent {v['p']:.0%} models** on {v['n']} yes/no questions: "
        f"measured {v['measured']:.1%} (95% Wilson {v['ci95'][0]:.1%}-{v['ci95'][1]:.1%}); "
        f"the binomial majority is {v['binomial']:.1%}: "
        + ("inside the interval." if v["within"] else "**outside the interval**."),
        "",
        "| cascade (cheap pair right on 60%) | shared cheap errors | accuracy | panel accuracy "
        "| paired test | cost | panel cost | cost ratio | escalated |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for c in found["cascades"]:
        lines.append(
            f"| n = {c['n']} | {c['shared_wrong']:.0%} | {c['cascade']['accuracy']:.1%} | "
            f"{c['panel']['accuracy']:.1%} | {c['verdict']} (p = {c['p_value']:.3g}) | "
            f"${c['cascade']['cost_usd']:.4f} | ${c['panel']['cost_usd']:.4f} | "
            f"{c['cost_ratio']:.2f} | {c['cascade']['escalated']:.1%} |"
        )
    return [*lines, ""]


def write(found: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "QUALITY.md"
    quick = " --quick" if found["vote"]["n"] < 1000 else ""
    head = [
        "# orchestrord: quality per dollar",
        "",
        f"Made by `python -m bench --scenario quality{quick}`.",
    ]
    path.write_text("\n".join([*head, *markdown(found)[1:]]))
    return path
