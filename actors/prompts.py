"""Prompt building for each stage, and the anonymous labelling of answers.

Answers shown to a model are labelled ``Answer A``, ``Answer B``, … in a shuffled
order and never carry the name of the model that wrote them.
"""

from __future__ import annotations

import random
import string
from collections.abc import Sequence

from actors.config import TemplatesConfig

IMPROVED_MARKER = "improved answer:"


def improved_answer(text: str) -> str:
    """What a meta reply offers the next round: the part after its last
    ``Improved answer:`` line (as the meta template asks), else the whole reply."""
    index = text.lower().rfind(IMPROVED_MARKER)
    if index < 0:
        return text.strip()
    tail = text[index + len(IMPROVED_MARKER) :].strip()
    return tail or text.strip()


def label(index: int) -> str:
    """A, B, …, Z, AA, AB, … (spreadsheet-style)."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = string.ascii_uppercase[rem] + letters
    return letters


def format_answers(answers: Sequence[str], rng: random.Random) -> str:
    """The answers, shuffled and labelled, as one block of text."""
    shuffled = list(answers)
    rng.shuffle(shuffled)
    return "\n\n".join(f"Answer {label(i)}:\n{text.strip()}" for i, text in enumerate(shuffled))


def render(
    templates: TemplatesConfig,
    stage: str,
    *,
    prompt: str,
    answers: Sequence[str] = (),
    round_number: int = 1,
    rng: random.Random | None = None,
) -> str:
    """The user message of ``stage`` (initial, meta, synthesis) for one model."""
    template = getattr(templates, stage)
    block = format_answers(answers, rng or random.Random()) if answers else ""
    return template.format(prompt=prompt, answers=block, round=round_number)
