"""``orchestrctl eval --apply SYSTEM``: make an evaluated system the default pipeline.

What each system becomes:

- a strategy (``vote``): ``[pipeline] strategy = "vote"`` (the rounds it was evaluated
  with are the file's own), and any ``[pipeline] default`` goes;
- a named pipeline: ``[pipeline] default = "NAME"``;
- a model alone: ``[pipelines.only-MODEL]`` (one ``chain`` step: the model answers the
  question) and ``default`` naming it; ``self:MODEL``: ``[pipelines.self-MODEL]`` (the
  model sampled as often as it was evaluated, then a vote) and ``default``.

The file is edited as text, so its comments and layout stay: a key of the ``[pipeline]``
table is replaced or added, a new ``[pipelines.NAME]`` table appended. The result is
written only if it parses to exactly the intended change and loads as a configuration;
the old file is kept beside it (``config.toml.bak``, or with a time stamp when that
exists). Otherwise (no file, a ``pipeline`` written inline or as dotted keys, a table of
that name already there) nothing is written and the TOML to paste is given instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actors.evaluation.plan import Setup, System

_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?$")
_ANY_HEADER = re.compile(r"^\s*\[")
_INLINE = re.compile(r"^\s*pipeline\s*[.=]")


class ApplyError(Exception):
    """The system cannot become a default pipeline (the oracle, not evaluated)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """What to set: ``[pipeline]`` keys (None: remove) and a new named pipeline."""

    pipeline: dict[str, str | None]
    table: tuple[str, list[dict[str, Any]]] | None = None  # (name, stages)

    def toml(self) -> str:
        """The change as TOML to paste."""
        lines = ["[pipeline]"]
        lines += [f"{k} = {json.dumps(v)}" for k, v in self.pipeline.items() if v is not None]
        table = self.table_lines()
        return "\n".join(lines + (["", *table] if table else [])) + "\n"

    def table_lines(self) -> list[str]:
        """The new ``[pipelines.NAME]`` table's lines (none without one)."""
        if self.table is None:
            return []
        name, stages = self.table
        return [
            f"[pipelines.{name}]",
            "stages = [",
            *(f"  {_inline(stage)}," for stage in stages),
            "]",
        ]


def _inline(stage: dict[str, Any]) -> str:
    return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in stage.items()) + " }"


def change_for(setup: Setup, system: System) -> Change:
    """The configuration change that makes ``system`` the default."""
    if system.kind == "strategy":
        return Change(pipeline={"strategy": system.name, "default": None})
    if system.kind == "pipeline":
        return Change(pipeline={"default": system.name})
    if system.kind == "model" and system.model is not None:
        name = f"only-{system.model}"
        stages: list[dict[str, Any]] = [{"kind": "chain", "models": [system.model]}]
        return Change(pipeline={"default": name}, table=(name, stages))
    if system.kind == "self" and system.model is not None:
        name = f"self-{system.model}"
        stages = [  # the model sampled as often as it was evaluated, then voted
            {"kind": "initial", "models": [system.model], "samples": system.samples(setup)},
            {"kind": "vote"},
        ]
        return Change(pipeline={"default": name}, table=(name, stages))
    raise ApplyError(f"{system.name} is not a system that can run (the oracle is a ceiling)")


def edited(text: str, change: Change) -> str | None:
    """``text`` with ``change`` made (None: it cannot be made safely as text)."""
    lines = text.splitlines()
    if any(_INLINE.match(line) for line in lines):
        return None  # pipeline = {...} or pipeline.x = ...: not a table to edit by lines
    headers = [(i, m.group(1)) for i, line in enumerate(lines) if (m := _HEADER.match(line))]
    if change.table is not None and any(h == f"pipelines.{change.table[0]}" for _, h in headers):
        return None  # a table of that name is already there
    start = next((i for i, h in headers if h == "pipeline"), None)
    if start is None:
        lines += ["", "[pipeline]"]
        start = len(lines) - 1
    end = next((i for i in range(start + 1, len(lines)) if _ANY_HEADER.match(lines[i])), len(lines))
    for key, value in change.pipeline.items():
        pattern = re.compile(rf"^\s*{key}\s*=")
        at = next((i for i in range(start + 1, end) if pattern.match(lines[i])), None)
        if value is None:
            if at is not None:
                del lines[at]
                end -= 1
            continue
        line = f"{key} = {json.dumps(value)}  # set by orchestrctl eval --apply"
        if at is not None:
            lines[at] = line
        else:
            lines.insert(start + 1, line)
            end += 1
    if change.table is not None:
        lines += ["", *change.table_lines()]
    return "\n".join(lines) + "\n"


def intended(before: dict[str, Any], change: Change) -> dict[str, Any]:
    """What the file should parse to after ``change``."""
    after = json.loads(json.dumps(before))
    table = after.setdefault("pipeline", {})
    for key, value in change.pipeline.items():
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    if change.table is not None:
        name, stages = change.table
        after.setdefault("pipelines", {})[name] = {"stages": stages}
    return after


@dataclass(frozen=True, slots=True, kw_only=True)
class Applied:
    written: Path | None  # None: nothing written; paste ``toml``
    backup: Path | None
    toml: str
    why: str  # what was done, or why nothing was


def apply(path: Path | None, change: Change) -> Applied:
    """Write ``change`` into the configuration file at ``path`` (a backup first), or say
    why not and give the TOML to paste."""
    from actors.config import config_from_dict  # deferred: the CLI starts without it
    from messages.errors import ConfigError

    paste = change.toml()
    if path is None or not path.is_file():
        return Applied(written=None, backup=None, toml=paste, why="no configuration file")
    text = path.read_text(encoding="utf-8")
    new = edited(text, change)
    if new is None:
        why = "the file's [pipeline] or that [pipelines] table cannot be edited safely as text"
        return Applied(written=None, backup=None, toml=paste, why=why)
    try:
        parsed = tomllib.loads(new)
        if parsed != intended(tomllib.loads(text), change):
            raise ValueError("the edit would change more than intended")
        config_from_dict(parsed, source=str(path))
    except (tomllib.TOMLDecodeError, ValueError, TypeError, ConfigError) as exc:
        return Applied(written=None, backup=None, toml=paste, why=f"not written: {exc}")
    backup = path.with_name(path.name + ".bak")
    if backup.exists():
        backup = path.with_name(f"{path.name}.{time.strftime('%Y%m%d-%H%M%S')}.bak")
    shutil.copy2(path, backup)
    temporary = path.with_name(f".{path.name}.apply")
    temporary.write_text(new, encoding="utf-8")
    shutil.copymode(path, temporary)
    os.replace(temporary, path)
    return Applied(written=path, backup=backup, toml=paste, why="written")
