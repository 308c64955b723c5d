"""Where the effective configuration comes from, and zero-config defaults.

Precedence: ``--config``, else ``$ORCHESTRORD_CONFIG``, else
``~/.config/orchestrord/config.toml`` if it exists, else defaults from the environment:
every provider whose key is set joins (``OPENAI_API_KEY`` -> ``gpt``,
``GEMINI_API_KEY``/``GOOGLE_API_KEY`` -> ``gemini``, ``LLAMA_BASE_URL`` -> ``llama``); with
none, the embedded local model serves as ``local-1..3`` (different seeds and temperatures).
``ORCHESTRORD_HTTP_LISTEN`` (e.g. ``0.0.0.0:8321``, as in the Dockerfile) turns the HTTP
front door on.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import shtab

from actors.config import Config, config_from_dict, config_from_file

LOCAL_PARTICIPANTS = (("local-1", 1, 0.3), ("local-2", 2, 0.7), ("local-3", 3, 1.0))
GEMINI_KEY_ENVS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
HTTP_LISTEN_ENV = "ORCHESTRORD_HTTP_LISTEN"  # zero-config only: a file has [http] listen


def default_models(environ: Mapping[str, str]) -> list[dict[str, Any]]:
    """Zero-config participants: one per provider whose key is set, else three local ones."""
    models: list[dict[str, Any]] = []
    if environ.get("OPENAI_API_KEY"):
        models.append({"name": "gpt", "provider": "openai"})
    gemini_env = next((e for e in GEMINI_KEY_ENVS if environ.get(e)), None)
    if gemini_env:
        models.append({"name": "gemini", "provider": "gemini", "api_key_env": gemini_env})
    if environ.get("LLAMA_BASE_URL"):
        llama: dict[str, Any] = {
            "name": "llama",
            "provider": "llama",
            "base_url": environ["LLAMA_BASE_URL"],
            "api": environ.get("LLAMA_API", "ollama"),
        }
        if environ.get("LLAMA_MODEL"):
            llama["model"] = environ["LLAMA_MODEL"]
        models.append(llama)
    if not models:
        # One shared llama.cpp process serves all three; they differ in seed and temperature.
        models = [
            {
                "name": name,
                "provider": "local",
                "seed": seed,
                "temperature": temperature,
                "max_tokens": 256,
                "max_concurrency": 1,
                "timeout_s": 120,
            }
            for name, seed, temperature in LOCAL_PARTICIPANTS
        ]
    return models


def config_path(flag: str | None, environ: Mapping[str, str]) -> Path | None:
    """``--config``, else ``$ORCHESTRORD_CONFIG``, else the user's file if it exists."""
    if flag:
        return Path(flag).expanduser()
    if environ.get("ORCHESTRORD_CONFIG"):
        return Path(environ["ORCHESTRORD_CONFIG"]).expanduser()
    home = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME", "~")) / ".config")
    user_file = Path(home).expanduser() / "orchestrord" / "config.toml"
    return user_file if user_file.is_file() else None


def resolve_config(flag: str | None = None, environ: Mapping[str, str] = os.environ) -> Config:
    """The effective configuration: a file if one is named or present, else zero-config."""
    path = config_path(flag, environ)
    if path is not None:
        return config_from_file(path)
    models = default_models(environ)
    data: dict[str, Any] = {"models": models, "pipeline": {}}
    if all(m["provider"] == "local" for m in models):
        # One llama.cpp process serves the three in turn: the last is last in line, not a
        # straggler, so rounds wait for every reply.
        data["pipeline"]["quorum"] = 0
    if environ.get(HTTP_LISTEN_ENV):  # a container's front door, with no file to say so
        data["http"] = {"listen": environ[HTTP_LISTEN_ENV]}
    return config_from_dict(data, source="environment")


def load_dotenv_file(directory: str | Path = ".") -> bool:
    """Load ``.env`` from ``directory`` without overriding the real environment."""
    from dotenv import load_dotenv  # deferred: 20 ms that orchestrctl's start rarely needs

    path = Path(directory) / ".env"
    return path.is_file() and load_dotenv(path, override=False)


def describe(config: Config) -> str:
    """The effective models and pipeline, as ``--check-config`` prints them (no secrets)."""
    lines = [f"configuration: {config.source}", "models:"]
    for m in config.models:
        limits = f"rpm={m.rpm or '-'} tpm={m.tpm or '-'} concurrency={m.max_concurrency}"
        where = f" at {m.base_url}" if m.base_url else ""
        key = f" key=${m.api_key_env}" if m.api_key_env else ""
        price = (
            f"${m.price_in_per_mtok:g}/${m.price_out_per_mtok:g} per Mtok"
            if m.priced
            else "price unknown"
        )
        lines.append(f"  {m.name:<12} {m.provider:<7} {m.model}{where} ({limits}; {price}){key}")
    p = config.pipeline
    lines += [
        f"pipeline: rounds={' -> '.join(p.rounds)} strategy={p.strategy} "
        f"synthesizer={p.synthesizer} min_replies={p.min_replies} "
        f"job_timeout_s={p.job_timeout_s:g}",
        *(
            [f"pipelines ({len(config.pipelines)}):"]
            + [f"  {name}: {named.describe()}" for name, named in config.pipelines.items()]
            if config.pipelines
            else ["pipelines: none ([pipelines.NAME] adds one; chosen with --pipeline NAME)"]
        ),
        f"socket: {config.daemon.socket}",
        f"state_dir: {config.daemon.state_dir}",
        "templates:",
    ]
    for name in ("system", "initial", "meta", "chain", "synthesis", "ranking", "repair"):
        text = getattr(config.templates, name).replace("\n", "\n    ")
        lines.append(f"  {name}:\n    {text}")
    return "\n".join(lines)


def completion_help() -> str:
    """``--print-completion``'s help: every shell the installed shtab writes a script for."""
    return f"print a completion script for {', '.join(shtab.SUPPORTED_SHELLS)}"
