"""``orchestrctl ask``: a question to the daemon, the answer on stdout as it streams.

The params come from the flags (one per ``messages.options.ASK_OPTIONS`` entry) and the
prompt (``-`` reads stdin; piped stdin with a prompt is its document). ``Progress``
shows the job on stderr (its id first, then each round's replies) and, on a terminal,
writes the answer's pieces as they arrive. Ctrl-C cancels the job over a second
connection, so it is not run on and paid for.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console
from rich.text import Text

from actors.daemon import render
from actors.daemon.connection import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Client,
    RpcError,
    Unreachable,
)
from messages.options import ASK_OPTIONS


class Progress:
    """A job's progress on stderr: its id first, then round by round."""

    def __init__(self, console: Console, show: bool, answer_to: Any = None) -> None:
        self.console = console
        self.show = show
        self.answer_to = answer_to  # a terminal: the answer's pieces are written as they come
        self.streamed: list[str] = []
        self.job_id: str | None = None
        self.ok = 0
        self.total = 0

    def __call__(self, event: dict[str, Any]) -> None:
        if self.job_id is None:
            self.job_id = event.get("job_id")
            if self.show:
                self.console.print(Text(f"job {self.job_id}", style="dim"))
        kind, round_name = event["type"], event.get("round", "")
        if self.answer_to is not None and kind in ("delta", "reset"):
            self._piece(kind, event.get("text") or "")
            return
        if not self.show or kind in ("delta", "reset"):
            return
        self._end_line()
        if kind == "round_started":
            self.ok = self.total = 0
            self.console.print(Text(f"▶ {round_name}", style="bold"))
        elif kind == "reply":
            self._reply(event["reply"])
        elif kind == "round_finished" and self.total:  # (a vote makes no call)
            self.console.print(Text(f"  {round_name}: {self.ok}/{self.total} ok", style="dim"))

    def _piece(self, kind: str, text: str) -> None:
        if kind == "reset":  # what was written is void: the answer starts again below
            self._end_line()
            if self.streamed:
                self.console.print(Text("(the answer restarts)", style="yellow"))
            self.streamed.clear()
            return
        self.streamed.append(text)
        self.answer_to.write(text)
        self.answer_to.flush()

    def _end_line(self) -> None:
        """Progress goes below the answer's pieces, not after them on one line."""
        if self.streamed and not self.streamed[-1].endswith("\n"):
            self.answer_to.write("\n")
            self.answer_to.flush()
            self.streamed.append("\n")

    def finish(self, answer: str) -> None:
        """Write the answer unless its pieces already were (then end their line)."""
        written = "".join(self.streamed)
        if written.rstrip("\n") == answer and written:
            self._end_line()
            return
        self._end_line()
        print(answer)

    def _reply(self, reply: dict[str, Any]) -> None:
        self.total += 1
        line = Text("  ")
        latency = f"{reply['latency_ms']:>7.0f} ms"
        if reply["status"] == "ok":
            self.ok += 1
            line.append("✓", style="green").append(f" {reply['model']:<14} {latency}")
        else:
            error = reply.get("error") or {}
            line.append("✗", style="red").append(f" {reply['model']:<14} {latency}  ")
            line.append(f"{reply['status']}: {error.get('code', '')} {error.get('message', '')}")
        self.console.print(line)


def read_prompt(prompt: str, stdin: Any) -> str:
    """``-`` reads the prompt from stdin; with a prompt, piped stdin is its document."""
    if prompt == "-":
        return str(stdin.read())
    if stdin is not None and not stdin.isatty():
        document = stdin.read()
        if document.strip():
            return f"{prompt}\n\n{document}"
    return prompt


def ask_params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {"stream": True}
    if args.messages is None:
        if args.prompt is None:
            raise argparse.ArgumentTypeError("give a PROMPT (or --messages FILE)")
        params["prompt"] = read_prompt(args.prompt, sys.stdin)
    elif args.prompt is not None:
        raise argparse.ArgumentTypeError("give a PROMPT or --messages FILE, not both")
    for option in ASK_OPTIONS:
        value = getattr(args, option.name, None) if option.flag else None
        if value is not None and value is not False:
            params[option.name] = value
    return params


def cmd_ask(client: Client, args: argparse.Namespace, out: Console, err: Console) -> int:
    try:
        params = ask_params(args)
    except argparse.ArgumentTypeError as exc:
        err.print(f"orchestrctl ask: {exc}", markup=False, highlight=False)
        return EXIT_USAGE
    terminal = not args.json and sys.stdout.isatty()
    progress = Progress(err, show=not args.json, answer_to=sys.stdout if terminal else None)
    try:
        result = client.call("ask", params, on_event=progress)
    except KeyboardInterrupt:
        cancel(client.path, progress.job_id, err)
        return EXIT_INTERRUPTED
    except RpcError as exc:
        if args.json:
            print(json.dumps({"error": exc.error}, indent=2))
        else:
            err.print(Text.assemble(("job failed: ", "red"), str(exc.error.get("message"))))
        return exc.exit_code
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        progress.finish(result["answer"])
        err.print(render.footer(result))
    return EXIT_OK


def cancel(path: str, job_id: str | None, err: Console) -> None:
    """Ctrl-C: the job is cancelled (it would otherwise run on and be paid for)."""
    if job_id is None:
        err.print("interrupted before the job started")
        return
    try:
        other = Client(path, timeout=5.0)
        try:
            other.call("cancel", {"job_id": job_id})
        finally:
            other.close()
        err.print(f"interrupted: job {job_id} cancelled")
    except (Unreachable, RpcError, OSError) as exc:
        err.print(f"interrupted; cancelling job {job_id} failed: {exc}")
