"""``orchestrctl``: the command-line client of the daemon's socket.

It imports no actor runtime: it finds the socket (``--socket``, ``$ORCHESTRORD_SOCKET``,
the config file's ``[daemon] socket``, the default; ``.env`` read like the daemon reads
it), checks the socket is served by its own uid, and speaks JSON-RPC.

Exit codes: 0 success, 1 the job (or request) failed, 2 usage error or invalid params,
3 the daemon is not reachable, 130 interrupted (the job is cancelled).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import shtab
from rich.console import Console

from actors.config import with_overrides
from actors.daemon import argtypes, evalcmd, render
from actors.daemon.askcmd import cmd_ask
from actors.daemon.connection import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    HOW_TO_START,
    Client,
    RpcError,
    Unreachable,
    Untrusted,
)
from actors.daemon.defaults import completion_help, load_dotenv_file, resolve_config
from actors.daemon.locate import socket_path
from actors.version import VERSION
from messages.errors import ConfigError
from messages.options import ASK_OPTIONS

EXPORT_PAGE = 500
# The flag parsers under their names from before they moved (tests reach them here).
_json_value, _messages_file = argtypes.json_value, argtypes.messages_file


# --- the other commands -------------------------------------------------------------------


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


# --- the command line ---------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="orchestrctl",
        description="Ask orchestrord (several LLMs, one better answer) and inspect its runs.",
        epilog="The socket: --socket, else $ORCHESTRORD_SOCKET, else the config file's "
        "[daemon] socket, else the default (as the daemon chooses it; .env is read too). "
        "Exit codes: 0 ok, 1 the job failed, 2 usage or invalid params, 3 no daemon, "
        "130 interrupted (the job is cancelled).",
    )
    p.add_argument("--socket", help="the daemon's socket (see below)")
    p.add_argument("--version", action="version", version=f"orchestrctl {VERSION}")
    shtab.add_argument_to(p, ["--print-completion"], help=completion_help())
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    ask = sub.add_parser(
        "ask",
        help="ask a question: the answer on stdout, progress on stderr",
        description="Ask a question. The answer goes to stdout; the job id, progress and a "
        "footer (confidence, tokens, cost) go to stderr. Ctrl-C cancels the job.",
    )
    ask.add_argument(
        "prompt",
        nargs="?",
        help="the prompt; - reads it from stdin; piped stdin is added as a document",
    )
    for option in ASK_OPTIONS:
        if option.flag is not None:
            argtypes.add_option(ask, option)
    ask.add_argument("--json", action="store_true", help="print the raw job result")
    ask.set_defaults(run=cmd_ask)
    status = sub.add_parser("status", help="the daemon's and every model's state")
    status.add_argument("--json", action="store_true")
    status.set_defaults(run=cmd_status)
    for name, fn, text in (
        ("job", cmd_job, "a stored job: its result, prompt, metadata and creation time"),
        ("cancel", cmd_cancel, "cancel a running job"),
    ):
        command = sub.add_parser(name, help=text)
        command.add_argument("job_id")
        command.set_defaults(run=fn)
    runs = sub.add_parser("runs", help="past jobs, newest first (filters below)")
    export = sub.add_parser("export", help="every stored job as JSON lines on stdout")
    for command in (runs, export):
        command.add_argument("--since", help="ISO 8601 time or Unix seconds")
        command.add_argument("--until", help="ISO 8601 time or Unix seconds")
        command.add_argument("--status", help="ok, error, timeout, cancelled, interrupted, …")
        command.add_argument(
            "--metadata", type=argtypes.json_value, metavar="JSON", help="match these"
        )
        command.add_argument("--grep", metavar="TEXT", help="a substring of the prompt")
    runs.add_argument("--limit", type=int, default=50)
    runs.add_argument("--json", action="store_true")
    runs.set_defaults(run=cmd_runs)
    export.set_defaults(run=cmd_export)
    evalcmd.add_parser(sub)
    key = sub.add_parser(
        "http-key",
        help="print the HTTP front door's API key (from [http] api_key_env or state_dir/http.key)",
    )
    key.add_argument("--config", help="the daemon's configuration file (as orchestrord takes it)")
    key.set_defaults(run=cmd_http_key, offline=True)
    from actors.daemon.console.launch import add_parser as add_console  # argparse only

    add_console(sub)  # orchestrctl console: a login URL for the web console
    mcp = sub.add_parser("mcp", help="an MCP server on stdio: MCP hosts ask the ensemble")
    mcp.set_defaults(run=cmd_mcp, offline=True)  # it reaches the daemon call by call
    for name, text in (("ping", "is the daemon there?"), ("shutdown", "stop the daemon")):
        sub.add_parser(name, help=text).set_defaults(run=cmd_simple(name))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)  # exits 2 on a usage error
    path = socket_path(args.socket)
    # rich honours NO_COLOR; progress and footer lines are never wrapped (a pipe is not 80
    # columns wide, and a log reader wants one line per reply).
    out, err = Console(), Console(stderr=True, soft_wrap=True)
    if getattr(args, "offline", False):  # needs no daemon
        offline: int = args.run(None, args, out, err)
        return offline
    try:
        client = Client(path)
    except Unreachable as exc:
        hint = "" if isinstance(exc, Untrusted) else f"; {HOW_TO_START}"
        print(f"orchestrctl: {exc}{hint}", file=sys.stderr)
        return EXIT_UNREACHABLE
    try:
        code: int = args.run(client, args, out, err)
        return code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Unreachable as exc:
        print(f"orchestrctl: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except RpcError as exc:
        print(f"orchestrctl: {exc.error.get('message')}", file=sys.stderr)
        return exc.exit_code
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
