"""Every prompt text orchestrord sends, the building of each stage's prompt, and the
anonymous labelling of answers.

Answers shown to a model are labelled ``Answer A``, ``Answer B``, … in a shuffled
order and never carry the name of the model that wrote them. The stage templates are
defaults a config's ``[templates]`` overrides; the ranking, schema and repair texts
are fixed here.
"""

from __future__ import annotations

import json
import random
import re
import string
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actors.config import TemplatesConfig  # annotations only: config imports this

DEFAULT_TEMPLATES = {
    "system": "You are one of several expert assistants answering the same question. "
    "Be accurate, complete and concise.",
    "initial": "{prompt}",
    "meta": "Question:\n{prompt}\n\n"
    "Here are anonymous answers to it from the previous round:\n\n{answers}\n\n"
    "Critique these answers: note errors, omissions and the strongest points. "
    "Then write your own improved answer to the question. "
    "End with the improved answer alone, after a line 'Improved answer:'.",
    "synthesis": "Question:\n{prompt}\n\n"
    "Several assistants answered it:\n\n{answers}\n\n"
    "Keep what is correct in these answers, fix what is wrong, and answer the question "
    "yourself. Reply with the answer alone: do not mention the candidates, and do not "
    "introduce it.",
    "chain": "Question:\n{prompt}\n\nHere is the current answer to it:\n\n{answer}\n\n"
    "Critique this answer: note errors, omissions and unclear parts. "
    "Then write an improved answer to the question. "
    "End with the improved answer alone, after a line 'Improved answer:'.",
    "ranking": "Question:\n{prompt}\n\nHere are anonymous answers to it:\n\n{answers}\n\n"
    "Rank the answers above from best to worst for correctness and completeness. "
    "End your reply with one line of the form 'Ranking: B > A > C' using every label once.",
    "repair": "{prompt}\n\nYour previous answer was:\n{answer}\n\n"
    "It does not meet the requirements: {errors}. Reply with the corrected answer only.",
    # A tool job's panel split: the synthesizer, given the tools, decides (actors.toolvote)
    "tools": "Question:\n{prompt}\n\n"
    "Several assistants were asked to take the next step in this conversation. They had "
    "the same tools you have. Their proposals:\n\n{proposals}\n\n"
    "Decide the next step yourself. {rule} Check the function names and arguments against "
    "the question and the tool definitions, and fix any that are wrong. Do not mention "
    "the proposals.",
}
# What a judge model is asked when an evaluation grades an answer with ``judge``.
JUDGE_RUBRIC = (
    "You are grading an answer against a reference answer.\n\n"
    "Question:\n{question}\n\nReference answer:\n{reference}\n\n"
    "Answer to grade:\n{answer}\n\n"
    "The answer is CORRECT if it states the same final answer as the reference (wording, "
    "length and extra explanation do not matter) and INCORRECT if it states a different "
    "one, hedges between several, or gives none. Reply with one line: "
    "'VERDICT: CORRECT' or 'VERDICT: INCORRECT'."
)
# The placeholders each template may use ([templates] in the config is checked against it).
PLACEHOLDERS = {
    "initial": frozenset({"prompt", "answers", "round"}),
    "meta": frozenset({"prompt", "answers", "round"}),
    "synthesis": frozenset({"prompt", "answers", "round"}),
    "chain": frozenset({"prompt", "answer", "round"}),
    "ranking": frozenset({"prompt", "answers", "round"}),
    "repair": frozenset({"prompt", "answer", "errors"}),
    "tools": frozenset({"prompt", "proposals", "rule"}),
}


def ranking_prompt(template: str, question: str, block: str) -> str:
    """Ask a model to rank the labelled answers in ``block`` (``template``: [templates]'
    ranking, or a rank stage's own)."""
    return template.format(prompt=question, answers=block, round="")


def schema_instructions(schema: Mapping[str, Any]) -> str:
    return (
        "\n\nReply with JSON only (no prose, no code fence), valid against this JSON Schema:\n"
        + json.dumps(schema, indent=1, sort_keys=True)
    )


def validate_instructions(validate: Mapping[str, Any]) -> str:
    """What the synthesis prompt says about a pipeline's ``validate``."""
    parts = []
    sections = validate.get("required_sections")
    if sections:
        parts.append(
            "Organise the answer in these sections, each under its own title line: "
            + ", ".join(sections)
            + "."
        )
    if validate.get("regex"):
        parts.append(f"The answer must match the regular expression {validate['regex']}.")
    return "\n\n" + " ".join(parts) if parts else ""


def schema_repair(
    templates: TemplatesConfig, synthesis_prompt: str, answer: str, errors: Sequence[str]
) -> str:
    """Ask the synthesizer to fix an answer that failed the job's JSON Schema."""
    return templates.repair.format(prompt=synthesis_prompt, answer=answer, errors="; ".join(errors))


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


def format_answers(answers: Sequence[str], rng: random.Random, numbered: bool = False) -> str:
    """The answers, shuffled and labelled (``Answer A``, …; ``numbered``: ``Candidate 1``,
    …, for the synthesis, whose writer copied letter labels into its answer), as one
    block of text."""
    shuffled = list(answers)
    rng.shuffle(shuffled)
    if numbered:
        return "\n\n".join(f"Candidate {i + 1}:\n{t.strip()}" for i, t in enumerate(shuffled))
    return "\n\n".join(f"Answer {label(i)}:\n{text.strip()}" for i, text in enumerate(shuffled))


# What a synthesizer put before its answer that is not the answer: a candidate's label, or
# a preamble such as "The single best final answer to the question is:".
_SYNTHESIS_LEAD = re.compile(
    r"\A\s*(?:\**\s*candidate\s+\d+\s*\**\s*[:.)-]\s*\**\s*"
    r"|(?:here\s+is\s+)?the\s+(?:single\s+)?(?:best\s+)?(?:final\s+)?(?:improved\s+)?"
    r"answer(?:\s+to\s+(?:the|this)\s+question)?(?:\s+is)?\s*:\s*)",
    re.IGNORECASE,
)


def clean_synthesis(text: str) -> str:
    """A synthesized answer without a copied candidate label or an introducing preamble
    (measured on the embedded model: eval/REPORT.md); the rest is left as written."""
    cleaned = text
    for _ in range(2):  # "Candidate 2: The best answer is: …"
        stripped = _SYNTHESIS_LEAD.sub("", cleaned, count=1)
        if stripped == cleaned or not stripped.strip():
            break
        cleaned = stripped
    return cleaned.strip() if cleaned != text else text


def render(
    template: str,
    *,
    prompt: str,
    answers: Sequence[str] = (),
    round_number: int = 1,
    rng: random.Random | None = None,
    numbered: bool = False,
) -> str:
    """A stage's user message for one model: ``template`` (initial, meta, synthesis) with
    the question, the shuffled anonymous ``answers`` and the round's number."""
    block = format_answers(answers, rng or random.Random(), numbered) if answers else ""
    return template.format(prompt=prompt, answers=block, round=round_number)
