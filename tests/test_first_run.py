"""What a new user meets first: the README's commands, the Makefile's Python, make run's
choice of extras, shell completion, py.typed, the systemd unit."""

from __future__ import annotations

import configparser
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from daemon_helpers import ROOT, DaemonProcess
from helpers import WAIT

README = (ROOT / "README.md").read_text()
SLOW = {  # every call takes longer than socat's default 0.5 s
    "models": [
        {"name": n, "provider": "fake", "reply": "answer: 391", "latency_ms": 700}
        for n in ("a", "b", "c")
    ]
}


def needs(tool: str) -> str:
    """The tool's path; under CI (which installs it) a missing tool fails the test."""
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{tool} is not installed; .ci/run installs it")
        pytest.skip(f"{tool} is not installed")
    return path


def readme_socat_commands() -> list[str]:
    """Every ``$ printf … | socat …`` example in the README, as a shell command."""
    found = re.findall(r"^\$ (printf .*?\\\n\s*\| socat [^\n]*)$", README, re.MULTILINE)
    return [c.replace("\\\n", " ") for c in found]


def test_the_readmes_socat_examples_print_results_for_jobs_longer_than_half_a_second(
    daemon,
) -> None:
    """socat's default -t 0.5 printed nothing for any job longer than that."""
    needs("socat")
    commands = readme_socat_commands()
    assert len(commands) >= 2
    d = daemon(SLOW)
    for command in commands:
        assert "/tmp/orchestrord-$UID/orchestrord.sock" in command
        run = subprocess.run(
            [
                "bash",
                "-c",
                command.replace("/tmp/orchestrord-$UID/orchestrord.sock", d.socket_path),
            ],
            capture_output=True,
            text=True,
            timeout=WAIT,
        )
        assert run.returncode == 0, run.stderr
        reply = json.loads(run.stdout.strip().splitlines()[-1])
        assert reply["result"]["status"] == "ok", reply
        assert reply["result"]["elapsed_ms"] > 500


# --- the Makefile's Python ---------------------------------------------------------------


def make_python(path_dirs: list[Path]) -> subprocess.CompletedProcess[str]:
    make = shutil.which("make")
    assert make is not None
    return subprocess.run(
        [make, "-s", "-f", str(ROOT / "Makefile"), "--eval", "pp: ; @echo [$(PYTHON)]", "pp"],
        capture_output=True,
        text=True,
        timeout=WAIT,
        env={"PATH": os.pathsep.join(map(str, path_dirs))},
        cwd=ROOT,
    )


def fake_python(directory: Path, name: str, works: bool) -> None:
    script = directory / name
    if works:
        script.symlink_to(sys.executable)
    else:  # a pyenv shim for a version that is not installed
        script.write_text("#!/bin/sh\necho 'pyenv: not installed' >&2\nexit 127\n")
        script.chmod(0o755)


def test_the_makefile_takes_the_newest_python_that_really_runs(tmp_path: Path) -> None:
    fake_python(tmp_path, "python3.13", works=False)
    fake_python(tmp_path, "python3.12", works=True)  # this interpreter, >= 3.11
    fake_python(tmp_path, "python3", works=True)
    assert make_python([tmp_path]).stdout.strip() == "[python3.12]"


def test_the_makefile_falls_back_to_python3_and_stops_clearly_without_one(tmp_path: Path) -> None:
    fake_python(tmp_path, "python3", works=True)
    assert make_python([tmp_path]).stdout.strip() == "[python3]"
    empty = tmp_path / "empty"
    empty.mkdir()
    make = shutil.which("make")
    assert make is not None
    run = subprocess.run(
        [
            make,
            "-f",
            str(ROOT / "Makefile"),
            "VENV=" + str(tmp_path / "venv"),
            str(tmp_path / "venv/bin/python"),
        ],
        capture_output=True,
        text=True,
        timeout=WAIT,
        env={"PATH": str(empty)},
        cwd=ROOT,
    )
    assert run.returncode != 0
    assert "needs Python >= 3.11" in run.stderr
    assert not (tmp_path / "venv").exists()


# --- make run without the local model when hosted models are configured -----------------


def load_needs_local():
    spec = importlib.util.spec_from_file_location("needs_local", ROOT / "tools/needs_local.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.needs_local


@pytest.mark.parametrize(
    ("environ", "dotenv", "config", "expected"),
    [
        ({}, "", None, True),  # zero-config, no key: the local trio
        ({"OPENAI_API_KEY": "sk-x"}, "", None, False),
        ({}, "export GEMINI_API_KEY='g'\n", None, False),
        ({}, "# LLAMA_BASE_URL=http://x\n", None, True),  # a comment is not a setting
        ({"OPENAI_API_KEY": "sk"}, "", '[[models]]\nname = "l"\nprovider = "local"\n', True),
        ({}, "", '[[models]]\nname = "g"\nprovider = "openai"\n', False),
        ({}, "", "not toml [", True),  # the daemon will say what is wrong
    ],
)
def test_make_run_builds_the_local_model_only_when_it_is_used(
    tmp_path: Path, environ: dict, dotenv: str, config: str | None, expected: bool
) -> None:
    env = {"HOME": str(tmp_path), **environ}
    (tmp_path / ".env").write_text(dotenv)
    if config is not None:
        (tmp_path / "c.toml").write_text(config)
        env["ORCHESTRORD_CONFIG"] = str(tmp_path / "c.toml")
    assert load_needs_local()(env, tmp_path) is expected


# --- completion, types, the unit ---------------------------------------------------------


@pytest.mark.parametrize("command", ["orchestrctl", "orchestrord"])
@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_both_commands_print_a_shell_completion(command: str, shell: str) -> None:
    run = subprocess.run(
        [str(ROOT / "bin" / command), "--print-completion", shell],
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert run.returncode == 0, run.stderr
    assert command in run.stdout
    if command == "orchestrctl":
        assert "ask" in run.stdout and "status" in run.stdout


def test_both_packages_are_typed() -> None:
    for package in ("actors", "messages"):
        assert (ROOT / package / "py.typed").is_file()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'actors = ["py.typed"]' in pyproject and 'messages = ["py.typed"]' in pyproject


def test_the_systemd_unit_starts_the_installed_daemon_and_gets_its_ready() -> None:
    """The unit runs the installed program (here: this venv's console script, where
    ``pip install --user`` or pipx would put it), in its state directory."""
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    unit.read(ROOT / "contrib/orchestrord.service")
    service = unit["Service"]
    assert service["Type"] == "notify"
    installed = Path(sys.executable).parent / "orchestrord"
    if not installed.exists():
        pytest.skip("the package is not installed in this environment")
    home = Path(tempfile.mkdtemp(prefix="oh-", dir="/tmp"))
    try:

        def expand(text: str) -> str:  # systemd's specifiers for a user unit
            return text.replace("%h", str(home)).replace("%S", str(home / ".local/state"))

        (home / ".local/bin").mkdir(parents=True)
        (home / ".local/bin/orchestrord").symlink_to(installed)
        argv = expand(service["ExecStart"]).split()
        assert argv[0] == str(home / ".local/bin/orchestrord")
        state = Path(expand(service["WorkingDirectory"]))
        state.mkdir(parents=True)  # what StateDirectory= does
        variable, _, value = service["Environment"].partition("=")
        proc = DaemonProcess({"models": [{"name": "a", "provider": "fake"}]}, workdir=home)
        notify = str(home / "notify")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(notify)
            sock.settimeout(WAIT)
            env = {
                **os.environ,
                variable: expand(value),
                "NOTIFY_SOCKET": notify,
                "ORCHESTRORD_CONFIG": str(proc.config_path),
            }
            child = subprocess.Popen(
                argv, env=env, cwd=state, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            try:
                assert sock.recv(64) == b"READY=1"
                assert (state / "runs.sqlite3").exists()  # the state went where it may write
                child.terminate()  # what systemctl stop sends
                assert sock.recv(64) == b"STOPPING=1"
                assert child.wait(timeout=WAIT) == 0
            finally:
                if child.poll() is None:
                    child.kill()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_the_readmes_embedding_example_runs(tmp_path: Path, monkeypatch, capsys) -> None:
    [block] = [
        b for b in re.findall(r"```python\n(.*?)```", README, re.DOTALL) if "import actors" in b
    ]
    (tmp_path / "config.toml").write_text(
        '[[models]]\nname = "gpt"\nprovider = "fake"\nreply = "Canberra"\n'
        '[[models]]\nname = "gemini"\nprovider = "fake"\nreply = "Canberra"\n'
    )
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {})  # the README's own code
    out = capsys.readouterr().out
    assert "Canberra" in out and "'status': 'ok'" in out and "'models'" in out


def test_the_protocol_reference_lists_every_ask_option_as_declared() -> None:
    from messages.options import ASK_OPTIONS

    doc = (ROOT / "docs/protocol.md").read_text()
    for option in ASK_OPTIONS:
        row = next(
            (line for line in doc.splitlines() if line.startswith(f"| `{option.name}` |")), None
        )
        assert row is not None, f"docs/protocol.md has no row for {option.name}"
        assert option.help in row, f"{option.name}: the row's text differs from the table's"
        if option.flag:
            assert option.flag in row


def test_the_readme_links_only_inside_the_repository() -> None:
    links = re.findall(r"\]\(([^)]+)\)", README)
    outside = [link for link in links if "://" in link or link.startswith("..")]
    assert outside == [], outside
    for link in links:
        assert (ROOT / link.split("#")[0]).exists(), link
    assert "../shared" not in README
