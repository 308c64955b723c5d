"""``orchestrctl console``: print a login URL carrying a one-time token (as notebook
servers do) and open it in a browser when there is one.

The command holds the HTTP key (``[http] api_key_env``, else ``state_dir/http.key``),
asks the door for a one-time token with it (``POST /console/login-token``) and prints
``http://HOST:PORT/login?token=…``: the token opens one session, once, within five
minutes. Light: argparse and the standard library until the command runs."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

OPENS_BROWSER = ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER")  # Linux: a desktop, or a choice


def add_parser(sub: Any) -> None:
    console = sub.add_parser(
        "console",
        help="open the web console: print a login URL with a one-time token",
        description="Print a login URL for the web console (a one-time token, good for "
        "five minutes) and open it in a browser when there is one. Needs [http] listen.",
    )
    console.add_argument("--config", help="the daemon's configuration file")
    console.add_argument("--no-browser", action="store_true", help="only print the URL")
    console.set_defaults(run=run, offline=True)  # it talks HTTP, not the socket


def run(client: None, args: argparse.Namespace, out: Any, err: Any) -> int:
    from actors.config import with_overrides
    from actors.daemon.connection import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
    from actors.daemon.defaults import load_dotenv_file, resolve_config
    from messages.errors import ConfigError

    load_dotenv_file()
    try:
        config = resolve_config(args.config, os.environ)
        config = with_overrides(config, state_dir=os.environ.get("ORCHESTRORD_STATE_DIR"))
    except ConfigError as exc:
        return _fail(f"bad configuration: {exc}", EXIT_USAGE)
    if config.http.listen is None:
        return _fail("the HTTP door is off: set [http] listen (e.g. 127.0.0.1:8321)", EXIT_USAGE)
    try:
        key = http_key(config)
    except OSError as exc:
        return _fail(f"no HTTP key: {exc}", EXIT_FAILED)
    base = base_url(*config.http.address)
    try:
        path = login_path(base, key)
    except ConnectionError as exc:
        return _fail(str(exc), EXIT_UNREACHABLE)
    except PermissionError as exc:
        return _fail(str(exc), EXIT_FAILED)
    url = base + path
    print(url, flush=True)
    if not args.no_browser and has_browser():
        import webbrowser

        webbrowser.open(url)
    return EXIT_OK


def http_key(config: Any) -> str:
    from actors.daemon.http.auth import KEY_FILE, read_key_file

    name = config.http.api_key_env
    if os.environ.get(name):
        return os.environ[name]
    return read_key_file(Path(config.daemon.state_dir).expanduser() / KEY_FILE)


def base_url(host: str, port: int) -> str:
    """Where a browser on this machine reaches the door listening on ``host``."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def login_path(base: str, key: str) -> str:
    """A one-time login path from the door (``ConnectionError``: no daemon answers;
    ``PermissionError``: it refused the key)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"{base}/console/login-token",
        data=b"",
        method="POST",
        headers={"Authorization": f"Bearer {key}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # http: base_url made it
            return str(json.load(response)["path"])
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise PermissionError(f"{base} refused the HTTP key (is it this daemon's?)") from None
        raise ConnectionError(f"{base} answered {exc.code}: is it orchestrord?") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConnectionError(f"no orchestrord serving HTTP at {base} ({reason})") from None


def has_browser() -> bool:
    return sys.platform in ("darwin", "win32") or any(os.environ.get(v) for v in OPENS_BROWSER)


def _fail(message: str, code: int) -> int:
    print(f"orchestrctl console: {message}", file=sys.stderr)
    return code
