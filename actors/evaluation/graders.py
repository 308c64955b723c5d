"""Graders: is an answer right? Each has a ``key`` (the canonical form of the answer it
compares: a number, a letter, normalised text) used both to grade and, for ``self:MODEL``,
to vote; and a ``pattern`` the jobs get as ``answer_pattern`` so that the ``vote``
strategy and the agreement map compare what the grader compares.

- ``normalized`` (default): the vote normaliser's form equals a reference's.
- ``exact``: the stripped text equals a reference.
- ``numeric``: the last number in the answer is within ``tolerance`` of a reference
  (default 1e-6, relative to the reference's size when it is above 1).
- ``choice``: the chosen letter (A-H) equals the reference letter.
- ``contains``: a reference's normalised words appear, in order, in the answer's.
- ``regex``: the item's ``pattern`` extracts the answer (its first group, the last
  match), whose normalised form equals a reference's.
- ``judge``: a model grades the answer against the reference with a fixed rubric.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from actors import strategies
from actors.prompts import JUDGE_RUBRIC

GraderName = Literal["normalized", "exact", "numeric", "choice", "contains", "regex", "judge"]
GRADERS: tuple[GraderName, ...] = get_args(GraderName)  # the registry: every grader, in order
NUMBER_PATTERN = r"(-?\d[\d,]*(?:\.\d+)?)"
CHOICE_PATTERN = r"\b([A-H])\b"
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_EXPLICIT_CHOICE = re.compile(
    r"(?:answer|option|choice)\s*(?:is|:)?\s*:?\s*\(?\**([A-H])\b", re.IGNORECASE
)
_PAREN_CHOICE = re.compile(r"\(([A-H])\)")
_LEADING_CHOICE = re.compile(r"^\s*\**\(?([A-H])(?:[).:]|\**\s*$)", re.MULTILINE)
DEFAULT_TOLERANCE = 1e-6

_VERDICT = re.compile(r"VERDICT:\s*(CORRECT|INCORRECT)", re.IGNORECASE)


def number(text: str | None) -> float | None:
    """The last number written in ``text`` (commas as thousands separators)."""
    if not text:
        return None
    found = _NUMBER.findall(text)
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


def choice(text: str | None) -> str | None:
    """The letter an answer chooses: an explicit 'answer: B', else the last '(B)', else a
    line starting 'B)' or 'B.', else a reply that is a lone letter."""
    if not text:
        return None
    for pattern in (_EXPLICIT_CHOICE, _PAREN_CHOICE, _LEADING_CHOICE):
        found = pattern.findall(text)
        if found:
            return str(found[-1]).upper()
    stripped = text.strip().strip(".*").upper()
    return stripped if len(stripped) == 1 and "A" <= stripped <= "H" else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Grader:
    name: GraderName
    pattern: str | None = None  # the item's regex (regex grader)
    tolerance: float = DEFAULT_TOLERANCE

    @property
    def answer_pattern(self) -> str | None:
        """What the jobs should compare answers by (their ``answer_pattern``)."""
        if self.name == "regex":
            return self.pattern
        if self.name == "numeric":
            return NUMBER_PATTERN
        if self.name == "choice":
            return CHOICE_PATTERN
        return None

    def key(self, answer: str | None) -> str | None:
        """The canonical form of ``answer`` this grader compares (None: no answer)."""
        if answer is None or not answer.strip():
            return None
        if self.name == "exact":
            return answer.strip()
        if self.name == "numeric":
            value = number(answer)
            return None if value is None else repr(value)
        if self.name == "choice":
            return choice(answer)
        if self.name == "regex":
            return strategies.answer_key(answer, self.pattern)
        return strategies.normalise(answer)

    def correct(self, answer: str | None, references: Sequence[str]) -> bool:
        """Whether ``answer`` matches one of ``references`` (not for ``judge``)."""
        if answer is None or not answer.strip():
            return False
        if self.name == "numeric":
            value = number(answer)
            if value is None:
                return False
            for ref in references:
                target = number(ref)
                if target is not None and abs(value - target) <= self.tolerance * max(
                    1.0, abs(target)
                ):
                    return True
            return False
        if self.name == "contains":
            have = f" {strategies.normalise(answer)} "
            return any(f" {strategies.normalise(ref)} " in have for ref in references)
        if self.name == "regex":
            key = self.key(answer)
            return key is not None and key in {strategies.normalise(r) for r in references}
        key = self.key(answer)
        wanted = {r.strip() if self.name == "exact" else self.key(r) for r in references}
        if self.name == "choice":
            wanted = {r.strip().upper() for r in references}
        return key is not None and key in wanted


def judge_prompt(question: str, references: Sequence[str], answer: str) -> str:
    return JUDGE_RUBRIC.format(question=question, reference=" / ".join(references), answer=answer)


def judge_verdict(reply: str | None) -> bool:
    """A judge's reply read as right (True) or wrong; an unreadable verdict is wrong."""
    found = _VERDICT.findall(reply or "")
    return bool(found) and found[-1].upper() == "CORRECT"


JudgeFn = Callable[[str], str | None]  # prompt -> the judge model's reply
