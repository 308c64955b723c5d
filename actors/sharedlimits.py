"""Rate limits shared by every process on one provider key: token buckets in Redis.

A provider's limit belongs to its API key, not to a process. With ``[limits] backend =
"redis"``, each model's request and token buckets live in Redis under
``{key_prefix}:{{limit_key}}:…`` and every process that uses the same URL, prefix and
``limit_key`` (daemons on several hosts, an application embedding the actors) draws from
the same two buckets. The braces are a hash tag: one model's keys share a cluster slot.
How to reach Redis (URL from the environment, TLS, Cluster, Sentinel): ``actors.redisconn``.

Each operation is one server-side Lua script, atomic, timed by Redis's own clock (no two
hosts need agreeing clocks): ``take`` (the same rule as ``actors.limiter.TokenBucket``,
reserve included: take a request and the tokens now, or say how long to wait),
``refund`` (correct the token charge with the real usage) and ``pause`` (a provider's
``Retry-After``: hold every process, and empty the request bucket as of the pause's end
so the queued calls resume at the bucket's pace).

The calls run on the orchestrator's I/O loop (``redis.asyncio``); a model actor asks and
gets the answer back as a message, never waiting. When Redis cannot be reached,
``LimitsUnavailable`` tells the actor to fall back (``on_unavailable``); after
``RETRY_S`` the next call tries Redis again, and ``reachable`` says which it is.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from loguru import logger

from actors.config import LimitsConfig, ModelConfig
from actors.redisconn import connect, redacted, resolve_url

RETRY_S = 1.0  # while Redis is unreachable, try it again at most this often
# The reserve against arrival jitter (see actors.limiter) is at least this with shared
# buckets: between Redis's answer and the provider there is one more hop (a message to the
# actor) in one more process, and several processes share the machine. It shifts the
# first call once; it costs no rate.
SHARED_MARGIN_S = 0.1

# Shared by the scripts: a bucket is a hash {l = level, t = time of that level}.
_LEVEL = """
local now_t = redis.call('TIME')
local now = tonumber(now_t[1]) + tonumber(now_t[2]) / 1000000
local function level(key, cap, rate)
  local h = redis.call('HMGET', key, 'l', 't')
  local l, t = tonumber(h[1]), tonumber(h[2])
  if l == nil then return cap end
  if now > t then l = math.min(cap, l + (now - t) * rate) end
  return l
end
local function keep(key, l, t, cap, rate)
  redis.call('HSET', key, 'l', tostring(l), 't', tostring(t))
  redis.call('EXPIRE', key, math.ceil(math.max(60, 2 * cap / rate)))
end
"""

# KEYS: requests, tokens, pause. ARGV: rpm, burst, tpm, cost, margin_s (0: no bucket).
TAKE = (
    _LEVEL
    + """
local rpm, burst, tpm = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local cost, margin = tonumber(ARGV[4]), tonumber(ARGV[5])
local wait = 0
local paused = tonumber(redis.call('GET', KEYS[3]) or '0')
if paused > now then wait = paused - now end
local function need(l, cap, rate, amount)
  local want = math.max(amount, math.min(cap, amount + rate * margin))
  if l >= want then return 0 end
  return (want - l) / rate
end
local rl, tl
if rpm > 0 then
  rl = level(KEYS[1], burst, rpm / 60)
  wait = math.max(wait, need(rl, burst, rpm / 60, 1))
end
if tpm > 0 then
  tl = level(KEYS[2], tpm, tpm / 60)
  wait = math.max(wait, need(tl, tpm, tpm / 60, cost))
end
if wait > 0 then return tostring(wait) end
if rpm > 0 then keep(KEYS[1], rl - 1, now, burst, rpm / 60) end
if tpm > 0 then keep(KEYS[2], tl - cost, now, tpm, tpm / 60) end
return '0'
"""
)

# KEYS: tokens. ARGV: tpm, delta (charged - actual: > 0 gives back, < 0 charges more).
REFUND = (
    _LEVEL
    + """
local tpm, delta = tonumber(ARGV[1]), tonumber(ARGV[2])
keep(KEYS[1], math.min(tpm, level(KEYS[1], tpm, tpm / 60) + delta), now, tpm, tpm / 60)
return 1
"""
)

# KEYS: requests, pause. ARGV: seconds, rpm, burst.
PAUSE = (
    _LEVEL
    + """
local seconds, rpm, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local untl = now + seconds
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if untl > current then
  redis.call('SET', KEYS[2], tostring(untl), 'PX', math.ceil(seconds * 1000) + 1000)
end
if rpm > 0 then
  local l = level(KEYS[1], burst, rpm / 60)
  local t = math.max(untl, current)
  keep(KEYS[1], math.min(l, 1), t, burst, rpm / 60)
end
return 1
"""
)


# KEYS: requests, tokens. ARGV: rpm, burst, tpm, cost. After a process's cold first call
# (an SDK's first request can leave long after it was admitted), charge it as if it
# reached the provider only now: the shared level is capped at "full minus that call".
REANCHOR = (
    _LEVEL
    + """
local rpm, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local tpm, cost = tonumber(ARGV[3]), tonumber(ARGV[4])
if rpm > 0 then
  keep(KEYS[1], math.min(level(KEYS[1], burst, rpm / 60), burst - 1), now, burst, rpm / 60)
end
if tpm > 0 then
  keep(KEYS[2], math.min(level(KEYS[2], tpm, tpm / 60), tpm - cost), now, tpm, tpm / 60)
end
return 1
"""
)


class LimitsUnavailable(Exception):
    """Redis could not be reached; the caller follows ``on_unavailable``."""


class RedisLimits:
    """One orchestrator's connection to the shared buckets. Every coroutine runs on the
    orchestrator's I/O loop; ``reachable`` may be read from any thread."""

    def __init__(self, config: LimitsConfig, environ: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.environ: Mapping[str, str] = {} if environ is None else environ
        self.reachable = True  # until a call says otherwise
        self._retry_at = 0.0
        self._client: Any = None
        self._scripts: dict[str, Any] = {}

    @property
    def url(self) -> str:
        """The URL without a password, for status and logs."""
        try:
            return redacted(resolve_url(self.config, self.environ))
        except Exception:  # a variable unset since start: say which
            return f"${self.config.url_env}"

    def status(self) -> dict[str, Any]:
        mode = (
            "cluster" if self.config.cluster else "sentinel" if self.config.sentinels else "single"
        )
        return {"backend": "redis", "url": self.url, "mode": mode, "reachable": self.reachable}

    def worth_trying(self) -> bool:
        """Reachable, or unreachable long enough ago to try it again."""
        return self.reachable or time.monotonic() >= self._retry_at

    def _keys(self, model: ModelConfig, *names: str) -> list[str]:
        return [f"{self.config.key_prefix}:{{{model.limit_key}}}:{name}" for name in names]

    def _script(self, name: str, body: str) -> Any:
        if self._client is None:
            self._client = connect(self.config, self.environ)
        if name not in self._scripts:
            self._scripts[name] = self._client.register_script(body)  # EVALSHA, reloads
        return self._scripts[name]

    async def _run(self, name: str, body: str, keys: list[str], args: list[Any]) -> Any:
        import redis.exceptions

        try:
            result = await self._script(name, body)(keys=keys, args=args)
        except (redis.exceptions.RedisError, OSError) as exc:  # every failure: fall back
            if self.reachable:
                logger.error("rate limits: Redis at {} is unreachable: {}", self.url, exc)
            self.reachable = False
            self._retry_at = time.monotonic() + RETRY_S
            raise LimitsUnavailable(str(exc)) from None
        if not self.reachable:
            logger.info("rate limits: Redis at {} is reachable again", self.url)
            self.reachable = True
        return result

    async def take(self, model: ModelConfig, burst: float, cost: int) -> float:
        """Take one request and ``cost`` tokens now (0.0), or the seconds to wait first."""
        answer = await self._run(
            "take",
            TAKE,
            self._keys(model, "req", "tok", "pause"),
            [
                model.rpm or 0,
                burst,
                model.tpm or 0,
                cost,
                max(model.limit_margin_s, SHARED_MARGIN_S),
            ],
        )
        wait = float(answer)
        return wait if math.isfinite(wait) else RETRY_S

    async def refund(self, model: ModelConfig, delta: int) -> None:
        if model.tpm and delta:
            await self._run("refund", REFUND, self._keys(model, "tok"), [model.tpm, delta])

    async def pause(self, model: ModelConfig, seconds: float, burst: float) -> None:
        await self._run(
            "pause", PAUSE, self._keys(model, "req", "pause"), [seconds, model.rpm or 0, burst]
        )

    async def reanchor(self, model: ModelConfig, burst: float, cost: int) -> None:
        await self._run(
            "reanchor",
            REANCHOR,
            self._keys(model, "req", "tok"),
            [model.rpm or 0, burst, model.tpm or 0, cost],
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
