"""How to reach the Redis that holds the shared rate limits, as its users run it.

- The URL comes from ``[limits] url``, or whole from the variable ``url_env`` names (a URL
  may carry a password: secrets come only from the environment); ``password_env`` names a
  variable holding just the password. ``rediss://`` is TLS (redis-py's ``ssl_*`` query
  parameters, e.g. ``?ssl_ca_certs=/path/ca.pem``, configure it).
- ``cluster = true``: a Redis Cluster, reached through any node the URL names. Every key of
  one ``limit_key`` carries the hash tag ``{limit_key}``, so one model's buckets share a slot
  and its Lua scripts run on one node.
- ``sentinels = ["host:port", …]``: Redis Sentinel finds the master of ``service_name``.

``probe`` runs once at start and in ``--check-config``: a refused login or a database the
server does not have is a configuration error (it would never heal by itself), while an
unreachable server is only reported (``on_unavailable`` decides what happens then).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from actors.config import LimitsConfig
from messages.errors import ConfigError

SOCKET_TIMEOUT_S = 0.5  # a Redis that does not answer is unreachable, not a wait


def resolve_url(config: LimitsConfig, environ: Mapping[str, str]) -> str:
    """The URL to connect to: ``url_env``'s value when set, else ``url``."""
    if config.url_env:
        url = environ.get(config.url_env, "")
        if not url:
            raise ConfigError("limits.url_env", f"${config.url_env} is not set")
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(
                "limits.url_env",
                f"${config.url_env} must hold a redis://, rediss:// or unix:// URL",
            )
        return url
    return config.url


def redacted(url: str) -> str:
    """``url`` without its password, for status, logs and messages."""
    parts = urlsplit(url)
    if parts.password is None and "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def _password(config: LimitsConfig, environ: Mapping[str, str]) -> dict[str, Any]:
    if not config.password_env:
        return {}
    password = environ.get(config.password_env)
    if not password:
        raise ConfigError("limits.password_env", f"${config.password_env} is not set")
    return {"password": password}


def _sentinels(config: LimitsConfig) -> list[tuple[str, int]]:
    out = []
    for i, spec in enumerate(config.sentinels):
        host, _, port = spec.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"limits.sentinels[{i}]", f"expected HOST:PORT, got {spec!r}")
        out.append((host.strip("[]"), int(port)))
    return out


def connect(config: LimitsConfig, environ: Mapping[str, str], *, sync: bool = False) -> Any:
    """A redis-py client (asyncio unless ``sync``) for this configuration."""
    if sync:
        import redis as module  # the .[redis] extra: only this backend needs it
        from redis.cluster import RedisCluster
        from redis.sentinel import Sentinel
    else:
        import redis.asyncio as module  # type: ignore[no-redef]  # same API, asyncio
        from redis.asyncio.cluster import RedisCluster  # type: ignore[assignment]
        from redis.asyncio.sentinel import Sentinel  # type: ignore[assignment]
    url = resolve_url(config, environ)
    options: dict[str, Any] = {
        "socket_timeout": SOCKET_TIMEOUT_S,
        "socket_connect_timeout": SOCKET_TIMEOUT_S,
        **_password(config, environ),
    }
    if config.sentinels:
        parts = urlsplit(url)
        db = int(parts.path.strip("/") or 0)
        sentinel = Sentinel(_sentinels(config), sentinel_kwargs=dict(options), db=db, **options)
        return sentinel.master_for(config.service_name)
    if config.cluster:
        return RedisCluster.from_url(url, **options)
    return module.Redis.from_url(url, retry_on_timeout=False, **options)


def probe(config: LimitsConfig, environ: Mapping[str, str]) -> str:
    """ "answers" or "unreachable (…)"; raises ``ConfigError`` for a refused login or an
    unknown database, which no retry would mend."""
    import redis.exceptions as errors

    where = redacted(resolve_url(config, environ))
    client = connect(config, environ, sync=True)
    try:
        client.ping()
    except errors.AuthenticationError as exc:
        raise ConfigError("limits.url", f"Redis at {where} refused the login: {exc}") from None
    except errors.ResponseError as exc:
        if "DB index" in str(exc) or "NOAUTH" in str(exc) or "NOPERM" in str(exc):
            raise ConfigError("limits.url", f"Redis at {where} refused: {exc}") from None
        raise ConfigError("limits.url", f"Redis at {where} answered an error: {exc}") from None
    except (errors.RedisError, OSError) as exc:
        return f"unreachable ({exc})"
    finally:
        client.close()
    return "answers"


def check(config: LimitsConfig, environ: Mapping[str, str]) -> None:
    """``probe`` at start: raises for what no retry mends, warns when unreachable."""
    answer = probe(config, environ)
    if answer != "answers":
        from loguru import logger

        where = redacted(resolve_url(config, environ))
        logger.warning("rate limits: Redis at {} is {}; {}", where, answer, _fallback(config))


def _fallback(config: LimitsConfig) -> str:
    if config.on_unavailable == "fail":
        return "calls fail until it answers (on_unavailable = fail)"
    share = f" / {config.expected_instances}" if config.expected_instances > 1 else ""
    return f"each model runs on local buckets at its rate{share} until it answers"


def describe(config: LimitsConfig, environ: Mapping[str, str]) -> str:
    """One line for ``--check-config``: the backend, where, and whether it answers."""
    if config.backend != "redis":
        return "limits: local (in-process buckets)"
    mode = "cluster" if config.cluster else "sentinel" if config.sentinels else "single"
    where = redacted(resolve_url(config, environ))
    answer = probe(config, environ)
    tail = "" if answer == "answers" else f"; {_fallback(config)}"
    return f"limits: redis ({mode}) at {where}: {answer}{tail}"
