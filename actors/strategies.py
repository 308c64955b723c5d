"""Aggregation strategies and their pure helpers: vote, rank, confidence, schema checks.

Pure functions only (no actors, no I/O), so every rule here is unit-tested directly:

- ``normalise`` — the form answers are compared in: case, whitespace, punctuation and
  number formats folded (``"1,000.0"`` and ``"1000"`` agree); ``answer_pattern`` first
  extracts the part to compare (its first group, or the whole match; the last match wins).
- ``vote`` — plurality over normalised answers; ``confidence`` is the winner's share of
  the ok replies; ties go to the group whose models have the best recent success rate.
- ``parse_ranking`` / ``borda`` — peer review: each model ranks the anonymous answers of
  the others (never its own); rankings are parsed leniently and combined by a Borda count
  normalised to [0, 1] for the missing self-vote; ``confidence`` is the winner's margin.
- ``agreement`` — confidence for ``synthesize``: the mean pairwise Jaccard similarity of
  the word sets of the last answering round's answers (1.0 = identical wording).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import regex

from actors.prompts import label

_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")
_PUNCT = re.compile(r"[^\w\s.+-]|(?<!\d)[.+-]|[.+-](?!\d)")


# A user's ``answer_pattern`` runs where it cannot stall anything: the ``regex`` engine
# with a time budget per reply (it gives up with TimeoutError, and releases the GIL while
# it works, so other threads run meanwhile), on at most the reply's last characters
# (where answers end up). A pattern that times out counts as "no match" for that reply.
PATTERN_TIMEOUT_S = 0.05
PATTERN_MAX_INPUT = 20_000


class PatternTimeout(Exception):
    """The pattern did not finish within PATTERN_TIMEOUT_S on one reply."""


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> regex.Pattern[str]:
    """``pattern`` compiled (case-insensitive, multi-line); raises ``regex.error``."""
    return regex.compile(pattern, regex.IGNORECASE | regex.MULTILINE)


@functools.lru_cache(maxsize=4096)
def _extract(text: str, pattern: str) -> str | None:
    compiled = compile_pattern(pattern)
    try:
        matches = list(
            compiled.finditer(text[-PATTERN_MAX_INPUT:], timeout=PATTERN_TIMEOUT_S, concurrent=True)
        )
    except TimeoutError:
        from loguru import logger  # not at import: orchestrctl loads config, not logging

        logger.warning("answer_pattern gave up on a reply after {}s", PATTERN_TIMEOUT_S)
        return None
    if not matches:
        return None
    last = matches[-1]
    found = last.group(1) if compiled.groups else last.group(0)
    return found if isinstance(found, str) else ""


def extract(text: str, pattern: str | None) -> str | None:
    """The part of ``text`` to compare: the last match of ``pattern`` (its first group
    if it has one), or the whole text without a pattern; None if the pattern is absent
    or does not finish within its time budget. Each (text, pattern) is matched once."""
    if not pattern:
        return text
    return _extract(text, pattern)


def _number(match: re.Match[str]) -> str:
    raw = match.group(0).replace(",", "")
    try:
        value = float(raw)
    except ValueError:
        return raw
    return str(int(value)) if value.is_integer() else repr(value)


def normalise(text: str) -> str:
    """Case, whitespace, punctuation and number formats folded away."""
    folded = _NUMBER.sub(_number, text.strip().lower())
    folded = _PUNCT.sub(" ", folded)
    return " ".join(folded.split())


SAMPLE_SEP = "#"  # a model's second and later samples answer as "gpt#2", "gpt#3", ...


def model_of(key: str) -> str:
    """The model an answer's key belongs to (``gpt#2``, a sample of ``gpt``: ``gpt``)."""
    head, sep, tail = key.rpartition(SAMPLE_SEP)
    return head if sep and tail.isdigit() else key


def answer_key(text: str | None, pattern: str | None) -> str | None:
    if text is None:
        return None
    part = extract(text, pattern)
    return None if part is None else normalise(part)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What a deciding stage (or, for ``[pipeline]``, the strategy) made of the answers:
    the answer, its confidence, and the detail of the strategy that chose it (a vote's
    ``votes``, a rank's ``ranking``, who synthesised)."""

    answer: str | None
    confidence: float | None = None
    synthesizer: str | None = None
    votes: tuple[dict[str, Any], ...] | None = None
    ranking: dict[str, Any] | None = None
    weights: dict[str, Any] | None = None  # a weighted vote: each answer's weight and source

    @property
    def winner(self) -> str | None:
        """A vote's winning answer as it was compared (normalised, extracted)."""
        return next((v["answer"] for v in self.votes or () if v.get("winner")), None)

    @property
    def tie(self) -> bool:
        """A vote whose winner was chosen among equals (by recent success)."""
        return any("tie_broken_by" in v for v in self.votes or ())

    @property
    def compared_whole(self) -> bool:
        """A vote that fell back to whole answers (its pattern matched no reply)."""
        return any(v.get("pattern_matched") is False for v in self.votes or ())


def vote(
    answers: Mapping[str, str],
    pattern: str | None,
    success: Mapping[str, float],
    weights: Mapping[str, float] | None = None,
) -> Outcome | None:
    """Plurality over ``answers`` (model -> text); None when no answer could be read.
    With ``weights`` (answer key -> weight), each answer counts its weight instead of 1,
    and the confidence is the winner's share of the total weight.

    When ``pattern`` matches no reply at all, the vote falls back to the whole replies,
    with confidence 0 and ``pattern_matched: false`` on every vote entry: a model that
    ignored the requested format still has an answer, and the result says so."""
    result = _plurality(answers, pattern, success, weights)
    if result is not None or not pattern:
        return result
    fallback = _plurality(answers, None, success, weights)
    if fallback is None:
        return None
    votes = tuple({**v, "pattern_matched": False} for v in fallback.votes or ())
    return Outcome(answer=fallback.answer, confidence=0.0, votes=votes)


def _plurality(
    answers: Mapping[str, str],
    pattern: str | None,
    success: Mapping[str, float],
    weights: Mapping[str, float] | None = None,
) -> Outcome | None:
    groups: dict[str, list[str]] = {}
    shown: dict[str, str] = {}
    for model, text in answers.items():
        key = answer_key(text, pattern)
        if key is None or not key:
            continue
        groups.setdefault(key, []).append(model)
    if not groups:
        return None

    def weight(key: str) -> float:
        return sum(1.0 if weights is None else weights.get(m, 0.0) for m in groups[key])

    def strength(key: str) -> tuple[float, int, float]:  # equal weights: the count decides
        return weight(key), len(groups[key]), max(success.get(m, 1.0) for m in groups[key])

    ordered = sorted(groups, key=strength, reverse=True)
    winner = ordered[0]
    tie = len(ordered) > 1 and strength(ordered[1])[:2] == strength(winner)[:2]
    best_model = max(groups[winner], key=lambda m: success.get(m, 1.0))
    for key, models in groups.items():
        shown[key] = (extract(answers[models[0]], pattern) or "").strip()
    votes = tuple(
        {
            "answer": key,
            "count": len(groups[key]),
            **({} if weights is None else {"weight": round(weight(key), 4)}),
            "models": sorted(groups[key]),
            **(
                {"winner": True, "tie_broken_by": "success_rate"}
                if key == winner and tie
                else {"winner": True}
                if key == winner
                else {}
            ),
        }
        for key in ordered
    )
    answer = (extract(answers[best_model], pattern) or answers[best_model]).strip()
    if weights is None:
        confidence = len(groups[winner]) / len(answers)
    else:
        total = sum(weights.get(m, 0.0) for m in answers)
        confidence = round(weight(winner) / total, 4) if total > 0 else 0.0
    return Outcome(answer=answer, confidence=confidence, votes=votes)


def all_agree(answers: Sequence[str], pattern: str | None) -> bool:
    """Two or more answers, all with the same non-empty normalised form."""
    keys = {answer_key(a, pattern) for a in answers}
    return len(answers) >= 2 and len(keys) == 1 and None not in keys and "" not in keys


# --- rank -------------------------------------------------------------------------------


def parse_ranking(text: str, labels: Sequence[str]) -> list[str] | None:
    """The labels in ranked order, read leniently from a model's reply; None if there is
    no usable ranking (fewer than two known labels, or none at all)."""
    known = set(labels)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    marked = [ln for ln in lines if "rank" in ln.lower()]
    candidates = list(reversed(marked)) + list(reversed(lines))
    for line in candidates:
        body = line.split(":", 1)[1] if ":" in line and "rank" in line.lower() else line
        found = re.findall(r"(?:answer\s+)?\b([A-Z]{1,2})\b", body)
        order = list(dict.fromkeys(x for x in found if x in known))
        if len(order) >= min(2, len(known)):
            return order
    return None


def borda(rankings: Mapping[str, Sequence[str]], candidates: Sequence[str]) -> dict[str, float]:
    """Borda scores in [0, 1], fair to every candidate although nobody ranks their own
    answer. ``rankings`` maps each ranker to its order. A ranking's places are worth 1
    (first) down to 0 (last) over the candidates it could rank (all but its author's);
    a candidate it leaves out shares the worth of the places left. A candidate's score is
    its mean over the rankings that could rank it."""

    def worth(ranker: str, order: Sequence[str], candidate: str) -> float:
        eligible = [c for c in candidates if c != ranker]
        places = len(eligible)
        if places < 2:
            return 1.0
        ranked = [c for c in dict.fromkeys(order) if c in eligible]
        if candidate in ranked:
            return (places - 1 - ranked.index(candidate)) / (places - 1)
        left = range(len(ranked), places)
        return sum((places - 1 - p) / (places - 1) for p in left) / len(left)

    scores = {}
    for candidate in candidates:
        marks = [worth(r, order, candidate) for r, order in rankings.items() if r != candidate]
        scores[candidate] = round(sum(marks) / len(marks), 4) if marks else 0.0
    return scores


def borda_confidence(scores: Mapping[str, float]) -> float:
    """The winner's margin over the runner-up (scores are already in [0, 1])."""
    if not scores:
        return 0.0
    ordered = sorted(scores.values(), reverse=True)
    runner_up = ordered[1] if len(ordered) > 1 else 0.0
    return round(max(0.0, min(1.0, ordered[0] - runner_up)), 4)


def labelled(answers: Sequence[str]) -> tuple[str, list[str]]:
    """The answers as 'Answer A: …' blocks in the given order, and their labels."""
    labels = [label(i) for i in range(len(answers))]
    text = "\n\n".join(
        f"Answer {lab}:\n{a.strip()}" for lab, a in zip(labels, answers, strict=True)
    )
    return text, labels


# --- confidence for synthesize ----------------------------------------------------------


def agreement(answers: Sequence[str]) -> float | None:
    """Mean pairwise Jaccard similarity of the answers' word sets; None under two answers."""
    sets = [set(normalise(a).split()) for a in answers]
    if len(sets) < 2:
        return None
    scores = [len(a & b) / len(a | b) if a | b else 1.0 for a, b in combinations(sets, 2)]
    return round(sum(scores) / len(scores), 4)


# --- the agreement map ------------------------------------------------------------------

SAME_ANSWER_CONTAINMENT = 0.8  # share of the shorter answer's words found in the longer


def same_answer(a: str, b: str, pattern: str | None) -> bool:
    """Whether two answers say the same thing: with ``pattern``, their extracted parts are
    equal once normalised; without, the normalised texts are equal, or nearly all the
    words of the shorter one are in the longer ("Canberra" and "The capital is Canberra."
    agree; "Sydney" and "Canberra" do not)."""
    return _same_key(answer_key(a, pattern), answer_key(b, pattern), pattern)


def _same_key(key_a: str | None, key_b: str | None, pattern: str | None) -> bool:
    if not key_a or not key_b:
        return False
    if key_a == key_b:
        return True
    if pattern:
        return False
    words_a, words_b = set(key_a.split()), set(key_b.split())
    return len(words_a & words_b) / min(len(words_a), len(words_b)) >= SAME_ANSWER_CONTAINMENT


def agreement_map(
    answers: Mapping[str, str],
    final: str | None,
    pattern: str | None,
    *,
    final_key: str | None = None,
) -> dict[str, Any]:
    """How far the models agree with the final answer and with each other: ``score`` (the
    share of answers that say what the final answer says; null without a final answer or
    answers), ``dissenters`` (models whose last answer differs from it) and ``clusters``
    (groups of equivalent answers, largest first). ``final_key``: the final answer's
    comparison key when the final answer is already what was compared (a vote's winner,
    the extracted part: the pattern is not looked for in it again)."""
    groups: list[tuple[str, list[str]]] = []
    for model, text in answers.items():
        for representative, models in groups:
            if same_answer(text, representative, pattern):
                models.append(model)
                break
        else:
            groups.append((text, [model]))
    clusters = [
        {"answer": (extract(rep, pattern) or rep).strip()[:200], "models": sorted(models)}
        for rep, models in sorted(groups, key=lambda g: -len(g[1]))
    ]
    if not final or not answers:
        return {"score": None, "dissenters": [], "clusters": clusters}
    key = answer_key(final, pattern) if final_key is None else final_key
    agreeing = [
        m for m, text in answers.items() if _same_key(answer_key(text, pattern), key, pattern)
    ]
    return {
        "score": round(len(agreeing) / len(answers), 4),
        "dissenters": sorted(m for m in answers if m not in agreeing),
        "clusters": clusters,
    }


# --- deterministic mode -----------------------------------------------------------------


def cache_key(**parts: Any) -> str:
    """A stable key for a deterministic job: everything that can change its result."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def stable_seed(key: str) -> int:
    return int(key[:8], 16)
