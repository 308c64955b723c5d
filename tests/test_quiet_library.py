"""A library is quiet: embedded, ``actors.*`` logs nothing until the host enables it
(pykka's NullHandler habit); the daemon enables it and logs as before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import WAIT

ROOT = Path(__file__).resolve().parent.parent

EMBEDDING = """
import json, sys
if sys.argv[1] == "loguru first":
    from loguru import logger
    import actors
else:
    import actors
    from loguru import logger

names = []
logger.add(lambda message: names.append(message.record["name"]), level="DEBUG")
config = {"models": [{"name": "a", "provider": "fake", "reply": "x"}]}
with actors.start(config, environ={}) as orch:
    orch.ask("q")
quiet = [n for n in names if n.split(".")[0] == "actors"]
logger.enable("actors")  # the host asks for them
with actors.start(config, environ={}) as orch:
    orch.ask("q")
loud = [n for n in names if n.split(".")[0] == "actors"]
print(json.dumps({"quiet": quiet, "loud": loud}))
"""


@pytest.mark.parametrize("order", ["actors first", "loguru first"])
def test_an_embedding_records_nothing_from_actors_until_it_enables_them(order: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", EMBEDDING, order],
        capture_output=True,
        text=True,
        timeout=WAIT,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["quiet"] == []
    assert "actors.orchestrator" in seen["loud"]  # enabled, the same run logs


def test_the_daemon_still_logs(daemon) -> None:
    d = daemon({"models": [{"name": "a", "provider": "fake", "reply": "x"}]})
    assert "orchestrator started with models a" in d.stderr()
