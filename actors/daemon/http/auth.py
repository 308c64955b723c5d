"""The door's key: ``Authorization: Bearer KEY`` (or, for Messages-API clients,
``x-api-key: KEY``). KEY comes from the variable ``[http] api_key_env`` names, else from
``state_dir/http.key``, made once (0600, never replaced) when missing; ``orchestrctl
http-key`` prints it."""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from starlette.requests import Request

from actors.config import Config
from actors.daemon.http.errors import HttpError

KEY_FILE = "http.key"


def api_key(config: Config, environ: Mapping[str, str]) -> tuple[str, str]:
    """(the key, where it comes from): the variable ``[http] api_key_env`` names, else
    ``state_dir/http.key``, made once (0600, never replaced) when missing."""
    name = config.http.api_key_env
    if environ.get(name):
        return environ[name], f"${name}"
    path = Path(config.daemon.state_dir).expanduser() / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return read_key_file(path), str(path)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(32) + "\n")
    return read_key_file(path), str(path)


def read_key_file(path: Path) -> str:
    """The key in ``path``: a regular file of its owner's, readable by nobody else."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd) as fh:
        info = os.fstat(fh.fileno())
        if info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise PermissionError(f"{path} must be yours and mode 0600")
        key = fh.read().strip()
    if not key:
        raise PermissionError(f"{path} is empty")
    return key


def given_key(request: Request, *, x_api_key: bool = False) -> str | None:
    """The key a request carries: a Bearer token, or (``x_api_key``) an ``x-api-key``."""
    if x_api_key and "x-api-key" in request.headers:
        return request.headers["x-api-key"]
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def authorise(request: Request, key: str, *, x_api_key: bool = False) -> None:
    """Raises a 401 unless the request carries ``key``."""
    given = given_key(request, x_api_key=x_api_key)
    raw = (given or "").encode("utf-8", "surrogateescape")  # any bytes: never a 500
    if given is None or not hmac.compare_digest(raw, key.encode()):
        how = "x-api-key: KEY or " if x_api_key else ""
        raise HttpError(
            401, f"a valid API key is needed: {how}Authorization: Bearer KEY", "invalid_api_key"
        )
