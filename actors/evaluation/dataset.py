"""Evaluation datasets: JSON Lines, one question per line, validated before any call.

A line: ``{"id": "…", "prompt": "…" (or "messages": [...]), "answer": "…" (or "answers":
[...]), "grader": "normalized" | "exact" | "numeric" | "choice" | "contains" | "regex" |
"judge", "pattern": "…" (regex), "tolerance": … (numeric)}``. A conversation is sent as one
prompt: the earlier turns as a transcript, then the last user turn (orchestrord's ``ask``
takes one prompt). Every problem names its line.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regex

from actors.evaluation import graders
from actors.evaluation.graders import GRADERS, Grader, GraderName
from messages.codec import has_surrogate

MAX_ITEMS = 100_000
ITEM_KEYS = frozenset(
    {"id", "prompt", "messages", "answer", "answers", "grader", "pattern", "tolerance", "judge"}
)


class DatasetError(ValueError):
    """A dataset line that cannot be used; the message names the line."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    id: str
    prompt: str
    answers: tuple[str, ...]
    grader: Grader
    judge: str | None = None  # the judge model for this item (grader "judge")


@dataclass(frozen=True, slots=True, kw_only=True)
class Dataset:
    name: str
    items: tuple[Item, ...]
    digest: str  # of the file's content: the run store keeps answers under it

    def limited(self, limit: int | None) -> Dataset:
        if limit is None:
            return self
        return Dataset(name=self.name, items=self.items[:limit], digest=self.digest)


def load(path: str | Path) -> Dataset:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    return parse(text.splitlines(), name=path.stem, digest=hashlib.sha256(raw).hexdigest()[:16])


def parse(lines: Iterable[str], *, name: str = "dataset", digest: str | None = None) -> Dataset:
    items: list[Item] = []
    seen: set[str] = set()
    body = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        body.append(line)
        if len(items) >= MAX_ITEMS:
            raise DatasetError(f"line {number}: more than {MAX_ITEMS} items")
        item = _item(number, line)
        if item.id in seen:
            raise DatasetError(f"line {number}: duplicate id {item.id!r}")
        seen.add(item.id)
        items.append(item)
    if not items:
        raise DatasetError(f"{name}: no items")
    if digest is None:
        digest = hashlib.sha256("\n".join(body).encode()).hexdigest()[:16]
    return Dataset(name=name, items=tuple(items), digest=digest)


def _item(number: int, line: str) -> Item:
    where = f"line {number}"
    try:
        data = json.loads(line, parse_constant=_no_constant)
    except (json.JSONDecodeError, ValueError, RecursionError) as exc:
        raise DatasetError(f"{where}: not a JSON object ({exc})") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{where}: expected a JSON object")
    unknown = set(data) - ITEM_KEYS
    if unknown:
        raise DatasetError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    item_id = data.get("id")
    if isinstance(item_id, int) and not isinstance(item_id, bool):
        item_id = str(item_id)
    if not isinstance(item_id, str) or not item_id.strip():
        raise DatasetError(f"{where}: id must be a non-empty string")
    prompt = _prompt(where, data)
    answers = _answers(where, data)
    grader = _grader(where, data, answers)
    judge = data.get("judge")
    if judge is not None and not (isinstance(judge, str) and judge):
        raise DatasetError(f"{where}: judge must be a model's name")
    for text in (item_id, prompt, *answers):
        if has_surrogate(text):
            raise DatasetError(f"{where}: a lone UTF-16 surrogate (not valid Unicode text)")
    return Item(id=item_id, prompt=prompt, answers=answers, grader=grader, judge=judge)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _prompt(where: str, data: Mapping[str, Any]) -> str:
    if ("prompt" in data) == ("messages" in data):
        raise DatasetError(f"{where}: give exactly one of prompt and messages")
    if "prompt" in data:
        prompt = data["prompt"]
        if not isinstance(prompt, str) or not prompt.strip():
            raise DatasetError(f"{where}: prompt must be a non-empty string")
        return prompt
    messages = data["messages"]
    if not isinstance(messages, list) or not messages:
        raise DatasetError(f"{where}: messages must be a non-empty list")
    turns = []
    for i, message in enumerate(messages):
        if (
            not isinstance(message, dict)
            or message.get("role") not in ("system", "user", "assistant")
            or not isinstance(message.get("content"), str)
        ):
            raise DatasetError(
                f"{where}: messages[{i}] must be {{role: system|user|assistant, content}}"
            )
        turns.append((message["role"], message["content"]))
    if turns[-1][0] != "user":
        raise DatasetError(f"{where}: the last message must be the user's")
    if len(turns) == 1:
        return turns[0][1]
    transcript = "\n\n".join(f"{role.capitalize()}: {content}" for role, content in turns[:-1])
    return f"{transcript}\n\nUser: {turns[-1][1]}"


def _answers(where: str, data: Mapping[str, Any]) -> tuple[str, ...]:
    if ("answer" in data) == ("answers" in data):
        raise DatasetError(f"{where}: give exactly one of answer and answers")
    raw = [data["answer"]] if "answer" in data else data["answers"]
    if not isinstance(raw, list) or not raw:
        raise DatasetError(f"{where}: answers must be a non-empty list")
    out = []
    for value in raw:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise DatasetError(f"{where}: an answer must be a string or a number")
        if isinstance(value, float) and not math.isfinite(value):
            raise DatasetError(f"{where}: an answer must be a finite number")
        text = str(value).strip()
        if not text:
            raise DatasetError(f"{where}: an answer must not be empty")
        out.append(text)
    return tuple(out)


def _grader_name(where: str, name: Any) -> GraderName:
    for known in GRADERS:
        if name == known:
            return known
    raise DatasetError(f"{where}: grader must be one of {list(GRADERS)}, not {name!r}")


def _grader(where: str, data: Mapping[str, Any], answers: tuple[str, ...]) -> Grader:
    name = _grader_name(where, data.get("grader", "normalized"))
    pattern = data.get("pattern")
    if name == "regex":
        if not isinstance(pattern, str) or not pattern:
            raise DatasetError(f"{where}: the regex grader needs a pattern")
        try:
            regex.compile(pattern)
        except (regex.error, RecursionError) as exc:
            raise DatasetError(f"{where}: pattern is not a valid regex: {exc}") from None
    elif pattern is not None:
        raise DatasetError(f"{where}: pattern is for the regex grader only")
    tolerance = data.get("tolerance")
    if tolerance is not None:
        if name != "numeric":
            raise DatasetError(f"{where}: tolerance is for the numeric grader only")
        if isinstance(tolerance, bool) or not isinstance(tolerance, int | float):
            raise DatasetError(f"{where}: tolerance must be a number >= 0")
        if not math.isfinite(tolerance) or tolerance < 0:
            raise DatasetError(f"{where}: tolerance must be a finite number >= 0")
    if name == "choice" and not all(len(a) == 1 and "A" <= a.upper() <= "H" for a in answers):
        raise DatasetError(f"{where}: a choice answer is one letter, A to H")
    if name == "numeric" and any(graders.number(a) is None for a in answers):
        raise DatasetError(f"{where}: a numeric answer must be a number")
    return Grader(
        name=name,
        pattern=pattern,
        tolerance=1e-6 if tolerance is None else float(tolerance),
    )
