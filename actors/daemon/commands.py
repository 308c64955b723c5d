"""``orchestrctl``'s commands besides ``ask`` and ``eval``: ``status``, ``job``,
``cancel``, ``runs``, ``export``, ``ping`` and ``shutdown`` ask the daemon; ``http-key``
and ``mcp`` run without a connection (``client`` is None for them).

Each takes ``(client, args, out, err)`` and returns the exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

from actors.config import with_overrides
from actors.daemon import render
from actors.daemon.connection import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Client
from actors.daemon.defaults import load_dotenv_file, resolve_config
from actors.daemon.locate import socket_path
from messages.errors import ConfigError

EXPORT_PAGE = 500


def cmd_http_key(client: None, args: argparse.Namespace, out: Console, err: Console) -> int:
    """The key HTTP clients send as ``Authorization: Bearer KEY``."""
    from actors.daemon.http import KEY_FILE, read_key_file  # defers starlette to this command

    load_dotenv_file()
    try:
        config = resolve_config(args.config, os.environ)
        config = with_overrides(config, state_dir=os.environ.get("ORCHESTRORD_STATE_DIR"))
    except ConfigError as exc:
        err.print(f"orchestrctl: bad configuration: {exc}", markup=False, highlight=False)
        return EXIT_USAGE
    name = config.http.api_key_env
    if os.environ.get(name):
        print(os.environ[name])
        return EXIT_OK
    path = Path(config.daemon.state_dir).expanduser() / KEY_FILE
    try:
        print(read_key_file(path))
    except FileNotFoundError:
        err.print(
            f"orchestrctl: no key yet: {path} is made when orchestrord starts with [http] "
            f"listen set (or set ${name})",
            markup=False,
            highlight=False,
        )
        return EXIT_FAILED
    except OSError as exc:
        err.print(f"orchestrctl: {exc}", markup=False, highlight=False)
        return EXIT_FAILED
    return EXIT_OK


def cmd_status(client: Client, args: argparse.Namespace, out: Console, err: Console) -> int:
    status = client.call("status")
    if args.json:
        print(json.dumps(status, indent=2))
        return EXIT_OK
    out.print(render.status_line(status))
    out.print(render.status_table(status["models"]))
    return EXIT_OK


def cmd_job(client: Client, args: argparse.Namespace, out: Console, err: Console) -> int:
    print(json.dumps(client.call("job", {"job_id": args.job_id}), indent=2))
    return EXIT_OK


def cmd_cancel(client: Client, args: argparse.Namespace, out: Console, err: Console) -> int:
    result = client.call("cancel", {"job_id": args.job_id})
    print("cancelled" if result["cancelled"] else "not running (already finished)")
    return EXIT_OK if result["cancelled"] else EXIT_FAILED


def runs_params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key in ("limit", "status", "since", "until", "metadata"):
        value = getattr(args, key, None)
        if value is not None:
            params[key] = value
    if getattr(args, "grep", None):
        params["text"] = args.grep
    return params


def cmd_runs(client: Client, args: argparse.Namespace, out: Console, err: Console) -> int:
    runs = client.call("runs", runs_params(args))["runs"]
    if args.json:
        print(json.dumps(runs, indent=2))
        return EXIT_OK
    out.print(render.runs_table(runs))
    return EXIT_OK


def exported(client: Client, args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """Every stored job matching the filters, oldest page last, one page at a time."""
    offset = 0
    while True:
        params = {**runs_params(args), "limit": EXPORT_PAGE, "offset": offset, "full": True}
        page = client.call("runs", params)["runs"]
        yield from page
        if len(page) < EXPORT_PAGE:
            return
        offset += len(page)


def cmd_export(client: Client, args: argparse.Namespace, out: Console, err: Console) -> int:
    for record in exported(client, args):
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    return EXIT_OK


def cmd_simple(method: str) -> Callable[..., int]:
    def run(client: Client, args: argparse.Namespace, out: Console, err: Console) -> int:
        result = client.call(method)
        print(result if isinstance(result, str) else json.dumps(result))
        return EXIT_OK

    return run


def cmd_mcp(client: None, args: argparse.Namespace, out: Console, err: Console) -> int:
    """An MCP server on stdio (actors.daemon.mcpserver), imported only here: the ``mcp``
    extra is optional and the other commands start without it."""
    try:
        from actors.daemon import mcpserver
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] != "mcp":
            raise
        print(f"orchestrctl mcp: {exc}; pip install 'orchestrord[mcp]'", file=sys.stderr)
        return EXIT_USAGE
    return mcpserver.serve(socket_path(args.socket))
