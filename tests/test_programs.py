"""The programs around the library: how they start, what they refuse, what they print."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import shtab
from helpers import WAIT

from actors import origin
from actors.config import DaemonConfig, default_state_dir

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def run(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=WAIT,
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1", **env},
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def foreign() -> Iterator[Path]:
    """A directory holding PyPI's kind of ``messages``: one that needs aiosmtplib."""
    where = Path(tempfile.mkdtemp(prefix="foreign-", dir="/tmp"))
    (where / "messages").mkdir()
    (where / "messages" / "__init__.py").write_text("import aiosmtplib\n")
    yield where
    shutil.rmtree(where, ignore_errors=True)


# --- a foreign `messages` -----------------------------------------------------------------


@pytest.mark.parametrize(
    "program",
    [
        [sys.executable, "-m", "actors", "--version"],
        [sys.executable, "-m", "actors.daemon", "--version"],
        [sys.executable, "-m", "actors.daemon.client", "--version"],
        [str(VENV_BIN / "orchestrord"), "--version"],
        [str(VENV_BIN / "orchestrctl"), "--version"],
    ],
    ids=["python -m actors", "python -m actors.daemon", "client", "orchestrord", "orchestrctl"],
)
def test_a_foreign_messages_first_on_the_path_is_named_in_one_line_exit_2(
    foreign: Path, program: list[str]
) -> None:
    """After `pip install messages` the daemon died with `No module named 'aiosmtplib'`."""
    if not Path(program[0]).exists():
        pytest.skip(f"{program[0]} is not installed")
    done = run(program, cwd=foreign.parent, PYTHONPATH=f"{foreign}{os.pathsep}{ROOT}")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"`messages` at {foreign / 'messages'} is not orchestrord's" in lines[0]


def test_an_embedding_gets_the_same_line_as_an_import_error(foreign: Path) -> None:
    probe = "import actors"
    done = run([sys.executable, "-c", probe], cwd=foreign.parent, PYTHONPATH=f"{foreign}:{ROOT}")
    assert done.returncode == 1
    assert "ImportError: orchestrord: the package `messages`" in done.stderr


def test_the_launchers_never_take_a_package_from_the_working_directory(foreign: Path) -> None:
    """``python -m`` puts the working directory first on the path: a `messages/` there
    shadowed the checkout."""
    for launcher, word in (("orchestrord", "orchestrord "), ("orchestrctl", "orchestrctl ")):
        done = run([str(ROOT / "bin" / launcher), "--version"], cwd=foreign)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(word)


def test_our_packages_are_ours() -> None:
    assert origin.foreign("actors") is None and origin.foreign("messages") is None
    assert origin.foreign("no_such_package_here") is None  # missing: not for us to say


@pytest.mark.parametrize(
    ("argv0", "orig_argv", "program"),
    [
        ("/venv/bin/orchestrord", ["python", "/venv/bin/orchestrord"], True),
        ("/usr/local/bin/orchestrctl", ["python", "/usr/local/bin/orchestrctl", "ask"], True),
        ("-m", ["python", "-m", "actors"], True),
        ("-m", ["python", "-X", "dev", "-m", "actors.daemon.client", "ping"], True),
        ("-m", ["python", "-P", "-mactors.daemon"], True),
        ("-m", ["python", "-m", "pytest", "-m", "actors"], False),
        ("app.py", ["python", "app.py", "-m", "actors"], False),
        ("-c", ["python", "-c", "import actors", "-m", "actors"], False),
    ],
)
def test_a_program_is_told_from_an_embedding(
    argv0: str, orig_argv: list[str], program: bool
) -> None:
    assert origin.running_program(argv0, orig_argv) is program


# --- python -m actors, completion, state_dir ----------------------------------------------


def test_python_m_actors_is_the_daemon() -> None:
    """It did nothing at all."""
    done = run([sys.executable, "-m", "actors", "--check-config"], cwd=ROOT)
    assert done.returncode in (0, 2), done.stderr  # 2: the embedded model is not installed
    assert "models:" in done.stdout or "pipeline" in done.stdout
    version = run([sys.executable, "-m", "actors", "--version"], cwd=ROOT)
    assert version.returncode == 0 and version.stdout.startswith("orchestrord ")


@pytest.mark.parametrize("program", ["orchestrord", "orchestrctl"])
def test_the_completion_help_names_every_shell_that_works(program: str) -> None:
    """It said three shells where five work."""
    helped = run([str(ROOT / "bin" / program), "--help"], cwd=ROOT)
    text = " ".join(helped.stdout.split())
    assert f"for {', '.join(shtab.SUPPORTED_SHELLS)}" in text
    assert len(shtab.SUPPORTED_SHELLS) >= 5
    for shell in shtab.SUPPORTED_SHELLS:
        done = run([str(ROOT / "bin" / program), "--print-completion", shell], cwd=ROOT)
        assert done.returncode == 0 and len(done.stdout) > 200, (shell, done.stderr)


def test_state_dir_follows_xdg_state_home() -> None:
    """``XDG_STATE_HOME`` was ignored."""
    assert default_state_dir({"XDG_STATE_HOME": "/srv/state"}) == "/srv/state/orchestrord"
    assert default_state_dir({}) == "~/.local/state/orchestrord"
    assert default_state_dir({"XDG_STATE_HOME": ""}) == "~/.local/state/orchestrord"
    relative = {"XDG_STATE_HOME": "state"}  # the spec: a relative path is ignored
    assert default_state_dir(relative) == "~/.local/state/orchestrord"


def test_the_daemon_config_takes_its_state_dir_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", "/srv/state")
    assert DaemonConfig().state_dir == "/srv/state/orchestrord"
