"""``orchestrctl``: a small client for the daemon's socket.

Exit codes: 0 success, 1 the job (or request) failed, 2 usage error, 3 the daemon
is not reachable.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any

import shtab
from rich.console import Console
from rich.table import Table

from actors.config import default_socket_path
from actors.daemon.peercred import peer_uid

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
HOW_TO_START = "start it with `make run` (or `bin/orchestrord`) and try again"


def version() -> str:
    try:
        return importlib.metadata.version("orchestrord")
    except importlib.metadata.PackageNotFoundError:  # a checkout that was never installed
        return "0.0.0+checkout"


class Unreachable(Exception):
    pass


class Untrusted(Unreachable):
    """The socket is served by another user: treated as no daemon at all."""


class RpcError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", "error"))
        self.error = error


class Client:
    """One connection; ``call`` sends a request and returns its result, passing any
    ``event`` notifications for it to ``on_event`` on the way."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.connect(path)
        except OSError as exc:
            self.sock.close()
            raise Unreachable(f"cannot reach orchestrord at {path} ({exc.strerror})") from None
        owner = peer_uid(self.sock)
        if owner != os.getuid():  # never send a prompt to a socket another user serves
            self.sock.close()
            raise Untrusted(
                f"the socket {path} is served by uid {owner}, not by you (uid {os.getuid()}); "
                "refusing to send anything to it"
            )
        self.file = self.sock.makefile("rb")
        self._next_id = 0

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> Any:
        self._next_id += 1
        request_id = self._next_id
        line = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}
        self.sock.sendall(json.dumps(line).encode() + b"\n")
        while True:
            raw = self.file.readline()
            if not raw:
                raise Unreachable(f"orchestrord at {self.path} closed the connection")
            message = json.loads(raw)
            if message.get("method") == "event":
                if on_event is not None and message["params"].get("id") == request_id:
                    on_event(message["params"])
                continue
            if message.get("id") != request_id:
                continue
            if "error" in message:
                raise RpcError(message["error"])
            return message["result"]

    def close(self) -> None:
        self.file.close()
        self.sock.close()


class Progress:
    """Round-by-round progress of a streamed job, on stderr."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.ok = 0
        self.total = 0

    def __call__(self, event: dict[str, Any]) -> None:
        kind, round_name = event["type"], event["round"]
        if kind == "round_started":
            self.ok = self.total = 0
            self.console.print(f"[bold]▶ {round_name}[/bold]")
        elif kind == "reply":
            reply = event["reply"]
            self.total += 1
            latency = f"{reply['latency_ms']:>7.0f} ms"
            if reply["status"] == "ok":
                self.ok += 1
                self.console.print(f"  [green]✓[/green] {reply['model']:<14} {latency}")
            else:
                error = reply.get("error") or {}
                self.console.print(
                    f"  [red]✗[/red] {reply['model']:<14} {latency}  "
                    f"{reply['status']}: {error.get('code', '')} {error.get('message', '')}",
                    markup=False,
                )
        elif kind == "round_finished":
            self.console.print(f"  [dim]{round_name}: {self.ok}/{self.total} ok[/dim]")


def _read_prompt(prompt: str) -> str:
    return sys.stdin.read() if prompt == "-" else prompt


def cmd_ask(client: Client, args: argparse.Namespace, out: Console, err: Console) -> int:
    params: dict[str, Any] = {"prompt": _read_prompt(args.prompt), "stream": not args.json}
    if args.models:
        params["models"] = [m for m in args.models.split(",") if m]
    if args.rounds:
        params["rounds"] = [r for r in args.rounds.split(",") if r]
    if args.timeout is not None:
        params["timeout_s"] = args.timeout
    if args.strategy:
        params["strategy"] = args.strategy
    try:
        result = client.call("ask", params, on_event=None if args.json else Progress(err))
    except RpcError as exc:
        if args.json:
            print(json.dumps({"error": exc.error}, indent=2))
        else:
            err.print(f"[red]job failed:[/red] {exc.error.get('message')}", highlight=False)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        cost = f", ${result['cost_usd']:.6f}" if result.get("cost_usd") else ""
        err.print(
            f"[dim]synthesizer: {result.get('synthesizer')}, "
            f"{result['elapsed_ms'] / 1000:.1f}s{cost}[/dim]"
        )
        print(result["answer"])
    return EXIT_OK


def cmd_status(client: Client, args: argparse.Namespace, out: Console, err: Console) -> int:
    status = client.call("status")
    if args.json:
        print(json.dumps(status, indent=2))
        return EXIT_OK
    out.print(
        f"orchestrord {status['version']}, up {status['uptime_s']:.0f}s, "
        f"{status['inflight_jobs']} job(s) in flight, {status['jobs_total']} total"
    )
    table = Table("model", "provider", "state", "restarts", "inflight", "ok", "failed")
    for m in status["models"]:
        colour = {"up": "green", "restarting": "yellow"}.get(m["state"], "red")
        table.add_row(
            m["name"],
            m["provider"],
            f"[{colour}]{m['state']}[/{colour}]",
            str(m["restarts"]),
            str(m["inflight"]),
            str(m["calls_ok"]),
            str(m["calls_failed"]),
        )
    out.print(table)
    return EXIT_OK


def cmd_job(client: Client, args: argparse.Namespace, out: Console, err: Console) -> int:
    print(json.dumps(client.call("job", {"job_id": args.job_id}), indent=2))
    return EXIT_OK


def cmd_cancel(client: Client, args: argparse.Namespace, out: Console, err: Console) -> int:
    result = client.call("cancel", {"job_id": args.job_id})
    print("cancelled" if result["cancelled"] else "not running (already finished)")
    return EXIT_OK if result["cancelled"] else EXIT_FAILED


def cmd_simple(method: str) -> Callable[..., int]:
    def run(client: Client, args: argparse.Namespace, out: Console, err: Console) -> int:
        result = client.call(method)
        print(result if isinstance(result, str) else json.dumps(result))
        return EXIT_OK

    return run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="orchestrctl", description="Talk to orchestrord.")
    p.add_argument("--socket", help="socket path (else $ORCHESTRORD_SOCKET, else the default)")
    p.add_argument("--version", action="version", version=f"orchestrctl {version()}")
    shtab.add_argument_to(p, ["--print-completion"], help="print a bash, zsh or tcsh completion")
    sub = p.add_subparsers(dest="command", required=True)
    ask = sub.add_parser("ask", help="ask a question; the answer goes to stdout")
    ask.add_argument("prompt", help="the prompt, or - to read it from stdin")
    ask.add_argument("--models", help="comma-separated model names")
    ask.add_argument("--rounds", help="comma-separated rounds, e.g. initial,meta,synthesis")
    ask.add_argument("--timeout", type=float, help="job timeout in seconds")
    ask.add_argument("--strategy", choices=["synthesize", "vote", "rank"])
    ask.add_argument("--json", action="store_true", help="print the raw job result")
    ask.set_defaults(run=cmd_ask)
    status = sub.add_parser("status", help="daemon and model status")
    status.add_argument("--json", action="store_true")
    status.set_defaults(run=cmd_status)
    for name, fn in (("job", cmd_job), ("cancel", cmd_cancel)):
        command = sub.add_parser(name, help=f"{name} a job by id")
        command.add_argument("job_id")
        command.set_defaults(run=fn)
    for name in ("ping", "shutdown"):
        sub.add_parser(name).set_defaults(run=cmd_simple(name))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)  # exits 2 on a usage error
    path = args.socket or os.environ.get("ORCHESTRORD_SOCKET") or default_socket_path()
    out, err = Console(), Console(stderr=True)
    try:
        client = Client(path)
    except Unreachable as exc:
        hint = "" if isinstance(exc, Untrusted) else f"; {HOW_TO_START}"
        print(f"orchestrctl: {exc}{hint}", file=sys.stderr)
        return EXIT_UNREACHABLE
    try:
        code: int = args.run(client, args, out, err)
        return code
    except Unreachable as exc:
        print(f"orchestrctl: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except RpcError as exc:
        print(f"orchestrctl: {exc.error.get('message')}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
