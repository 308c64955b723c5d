"""Logging: loguru to stderr (one JSON object per line with ``--log-json``), the stdlib
loggers of pykka and the SDKs routed into it, and secrets scrubbed from every line."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from loguru import logger

SECRET_SUFFIXES = ("_API_KEY", "_KEY", "_TOKEN", "_SECRET", "_PASSWORD")
MIN_SECRET_LEN = 6


def secret_values(environ: Mapping[str, str]) -> list[str]:
    """Values of variables whose names say they are secrets (never to be logged)."""
    return sorted(
        {
            v
            for k, v in environ.items()
            if k.upper().endswith(SECRET_SUFFIXES) and len(v) >= MIN_SECRET_LEN
        },
        key=len,
        reverse=True,
    )


class InterceptHandler(logging.Handler):
    """Send stdlib logging records to loguru (as loguru's documentation shows)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame: Any = logging.currentframe()
        depth = 2
        while frame is not None and frame.f_code.co_filename == logging.__file__:
            frame = frame.f_back
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())


def scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return text


class ScrubbingSink:
    """A loguru sink that writes every formatted line, traceback and JSON object included,
    with the secrets replaced: a secret in an exception's message or anywhere else in a
    record never reaches the stream."""

    def __init__(self, stream: TextIO, secrets: Sequence[str]) -> None:
        self.stream = stream
        self.secrets = list(secrets)

    def write(self, text: str) -> None:
        self.stream.write(scrub(text, self.secrets))

    def flush(self) -> None:
        self.stream.flush()


def setup_logging(
    level: str = "INFO", json_lines: bool = False, environ: Mapping[str, str] = os.environ
) -> None:
    """Logs to stderr, ``actors.*`` included (the library is quiet until a program enables
    it: this is where the daemon and ``orchestrctl`` do). ``diagnose`` is off: loguru would
    otherwise print every frame's local variables in a traceback (an SDK's headers, an
    environment), and the sink scrubs the values of secret-named variables from everything
    it writes."""
    secrets = secret_values(environ)

    def patch(record: Any) -> None:
        record["message"] = scrub(record["message"], secrets)

    logger.enable("actors")
    logger.remove()
    logger.configure(patcher=patch)
    logger.add(
        ScrubbingSink(sys.stderr, secrets),
        level=level.upper(),
        serialize=json_lines,
        backtrace=False,
        diagnose=False,
    )
    logging.basicConfig(handlers=[InterceptHandler()], level=logging.INFO, force=True)
    for noisy in ("httpx", "httpx2", "httpcore", "httpcore2", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
