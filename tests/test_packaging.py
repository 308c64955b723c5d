"""What ships beside the packages: the container image and the systemd unit. No Docker
engine or systemd manager here: the files are read, and rated when systemd-analyze is."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import WAIT

from actors.daemon.defaults import HTTP_LISTEN_ENV, resolve_config
from messages.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "contrib" / "orchestrord.service"


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            out.append((instruction.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = dockerfile()
    last_from = max(i for i, (instruction, _) in enumerate(steps) if instruction == "FROM")
    return steps[last_from:]


def unit() -> dict[str, list[str]]:
    """Every ``Key=value`` of the unit's [Service], repeated keys kept in order."""
    service: dict[str, list[str]] = {}
    section = ""
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            service.setdefault(key, []).append(value)
    return service


# --- the image ------------------------------------------------------------------------------


def test_the_image_runs_as_a_user_that_is_not_root() -> None:
    users = [args for instruction, args in final_stage() if instruction == "USER"]
    assert users, "no USER: the container would run as root"
    name = users[-1].split(":")[0]
    assert name not in ("root", "0") and name


def test_the_image_is_built_from_the_package_with_its_extras() -> None:
    runs = " ".join(args for instruction, args in dockerfile() if instruction == "RUN")
    assert re.search(r'pip install "\.\[\$\{EXTRAS\}\]"', runs)
    args = {a.split("=")[0]: a for i, a in dockerfile() if i == "ARG"}
    assert "local" in args["EXTRAS"]
    copies = [args for instruction, args in dockerfile() if instruction == "COPY"]
    assert not any(".venv" in c for c in copies)


def test_the_socket_and_the_state_are_volumes_and_http_listens_on_every_address() -> None:
    stage = final_stage()
    volumes = " ".join(a for i, a in stage if i == "VOLUME")
    env = " ".join(a for i, a in stage if i == "ENV")
    state = re.search(r"ORCHESTRORD_STATE_DIR=(\S+)", env)
    sock = re.search(r"ORCHESTRORD_SOCKET=(\S+)", env)
    assert state and sock
    assert f'"{state.group(1)}"' in volumes
    assert f'"{Path(sock.group(1)).parent}"' in volumes
    assert f"{HTTP_LISTEN_ENV}=0.0.0.0:8321" in env
    assert ("EXPOSE", "8321") in stage


def test_the_build_context_leaves_out_secrets_and_the_checkouts_venv() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"  # everything is left out, then what the build needs comes back
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "setup.cfg", "README.md", "actors", "messages"}


def test_the_http_door_listens_where_the_environment_says_without_a_file() -> None:
    config = resolve_config(None, {"HOME": "/nonexistent", HTTP_LISTEN_ENV: "0.0.0.0:8321"})
    assert config.http.listen == "0.0.0.0:8321"
    assert resolve_config(None, {"HOME": "/nonexistent"}).http.listen is None
    with pytest.raises(ConfigError, match=r"http\.listen"):
        resolve_config(None, {"HOME": "/nonexistent", HTTP_LISTEN_ENV: "everywhere"})


# --- the systemd unit -----------------------------------------------------------------------


def test_the_unit_runs_the_installed_program_not_a_checkout() -> None:
    service = unit()
    assert service["ExecStart"] == ["%h/.local/bin/orchestrord --log-json"]
    assert "%h/orchestrord" not in UNIT.read_text()  # the old checkout path


def test_the_unit_may_write_only_its_state_and_its_socket() -> None:
    service = unit()
    expected = {
        "ProtectSystem": "strict",
        "ProtectHome": "read-only",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes",
        "RestrictNamespaces": "yes",
        "SystemCallArchitectures": "native",
        "StateDirectory": "orchestrord",
        "RuntimeDirectory": "orchestrord",
    }
    for key, value in expected.items():
        assert service.get(key) == [value], key
    for key in ("ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs"):
        assert service.get(key) == ["yes"], key
    assert service["Environment"] == ["ORCHESTRORD_STATE_DIR=%S/orchestrord"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_rates_the_unit_ok_not_unsafe() -> None:
    """It rated 9.6 UNSAFE."""
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", done.stdout)
    assert found, done.stdout + done.stderr
    assert float(found.group(1)) <= 2.5 and found.group(2) == "OK"
