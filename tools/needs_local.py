"""Does the effective configuration use the embedded local model? (stdlib only)

``make run`` asks this before installing anything, so that a user of hosted models only
does not wait minutes for llama.cpp to compile. Exit 0: the local model is needed (no
provider key or base URL, or a config file with a ``provider = "local"`` model); exit 1:
it is not. It mirrors ``actors.daemon.defaults`` (which needs the installed dependencies).
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path

PROVIDER_VARIABLES = ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "LLAMA_BASE_URL")


def dotenv(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a ``.env`` file (comments, ``export`` and quotes allowed)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def config_file(environ: Mapping[str, str]) -> Path | None:
    if environ.get("ORCHESTRORD_CONFIG"):
        return Path(environ["ORCHESTRORD_CONFIG"]).expanduser()
    home = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME", "~")) / ".config")
    user_file = Path(home).expanduser() / "orchestrord" / "config.toml"
    return user_file if user_file.is_file() else None


def needs_local(environ: Mapping[str, str], workdir: Path = Path(".")) -> bool:
    env = {**dotenv(workdir / ".env"), **environ}  # the real environment wins, as in the daemon
    path = config_file(env)
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError):
            return True  # let the daemon report the problem; install everything
        models = data.get("models", [])
        return any(isinstance(m, dict) and m.get("provider") == "local" for m in models)
    return not any(env.get(name) for name in PROVIDER_VARIABLES)


if __name__ == "__main__":
    sys.exit(0 if needs_local(os.environ) else 1)
