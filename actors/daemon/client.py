"""``orchestrctl``: the command-line client of the daemon's socket (the console script
``actors.daemon.client:main``).

It imports no actor runtime: it finds the socket (``--socket``, ``$ORCHESTRORD_SOCKET``,
the config file's ``[daemon] socket``, the default; ``.env`` read like the daemon reads
it), checks the socket is served by its own uid, and speaks JSON-RPC.

This module is the command line and the dispatch; the rest lives beside it:
``locate`` finds the socket, ``argtypes`` parses the flags' values, ``askcmd`` is
``ask`` and its streaming output, ``commands`` the other commands, ``evalcmd`` ``eval``,
``render`` the tables and the footer, ``connection`` the JSON-RPC client and exit codes.

Exit codes: 0 success, 1 the job (or request) failed, 2 usage error or invalid params,
3 the daemon is not reachable, 130 interrupted (the job is cancelled).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import shtab
from rich.console import Console

from actors.daemon import argtypes, evalcmd
from actors.daemon.askcmd import cmd_ask
from actors.daemon.commands import (
    cmd_cancel,
    cmd_export,
    cmd_http_key,
    cmd_job,
    cmd_mcp,
    cmd_runs,
    cmd_simple,
    cmd_status,
)
from actors.daemon.connection import (
    EXIT_INTERRUPTED,
    EXIT_UNREACHABLE,
    HOW_TO_START,
    Client,
    RpcError,
    Unreachable,
    Untrusted,
)
from actors.daemon.defaults import completion_help
from actors.daemon.locate import socket_path
from actors.version import VERSION
from messages.options import ASK_OPTIONS

# The flag parsers under their names from before they moved (tests reach them here).
_json_value, _messages_file = argtypes.json_value, argtypes.messages_file
# argparse has no public name for the object add_subparsers returns.
Subparsers = argparse._SubParsersAction


def parser() -> argparse.ArgumentParser:
    """The command line: a subparser per command, each with its ``run`` function."""
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
    _add_ask(sub)
    _add_inspection(sub)
    evalcmd.add_parser(sub)
    _add_offline(sub)
    for name, text in (("ping", "is the daemon there?"), ("shutdown", "stop the daemon")):
        sub.add_parser(name, help=text).set_defaults(run=cmd_simple(name))
    return p


def _add_ask(sub: Subparsers) -> None:
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


def _add_inspection(sub: Subparsers) -> None:
    """``status``, ``job``, ``cancel``, ``runs`` and ``export``."""
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
        _add_filters(command)
    runs.add_argument("--limit", type=int, default=50)
    runs.add_argument("--json", action="store_true")
    runs.set_defaults(run=cmd_runs)
    export.set_defaults(run=cmd_export)


def _add_filters(command: argparse.ArgumentParser) -> None:
    """The filters ``runs`` and ``export`` share."""
    command.add_argument("--since", help="ISO 8601 time or Unix seconds")
    command.add_argument("--until", help="ISO 8601 time or Unix seconds")
    command.add_argument("--status", help="ok, error, timeout, cancelled, interrupted, …")
    command.add_argument("--metadata", type=argtypes.json_value, metavar="JSON", help="match these")
    command.add_argument("--grep", metavar="TEXT", help="a substring of the prompt")


def _add_offline(sub: Subparsers) -> None:
    """The commands that need no connection first: ``http-key``, ``console``, ``mcp``."""
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
