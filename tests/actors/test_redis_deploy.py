"""Redis as its users run it (issue 21): the URL or the password from the environment, a
refused login or an unknown database refused at start, a real Redis Cluster of three nodes
and a real Sentinel."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest
from redis_helpers import redis_process

from actors.config import LimitsConfig, config_from_dict
from actors.redisconn import probe, redacted
from actors.sharedlimits import RedisLimits
from bench.procs import RedisProcess
from messages.errors import ConfigError

PASSWORD = "s3cret-pw"


def model(**limits: object):
    [m] = config_from_dict({"models": [{"name": "m", "provider": "fake", **limits}]}).models
    return m


def takes(limits: RedisLimits, n: int, **model_limits: object) -> list[float]:
    m = model(**model_limits)

    async def scenario() -> list[float]:
        try:
            return [await limits.take(m, m.request_burst, 1) for _ in range(n)]
        finally:
            await limits.aclose()

    return asyncio.run(scenario())


@pytest.fixture
def locked_redis() -> Iterator[RedisProcess]:
    redis_process()  # skips, or fails under CI, without redis-server
    server = RedisProcess("--requirepass", PASSWORD).start()
    yield server
    server.cleanup()


def test_the_password_comes_from_the_variable_password_env_names(locked_redis) -> None:
    config = LimitsConfig(backend="redis", url=locked_redis.url, password_env="REDIS_PW")
    assert probe(config, {"REDIS_PW": PASSWORD}) == "answers"
    waits = takes(RedisLimits(config, {"REDIS_PW": PASSWORD}), 2, rpm=60, burst=5)
    assert waits == [0, 0]


def test_the_whole_url_comes_from_the_variable_url_env_names(locked_redis) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:{locked_redis.port}/0"
    config = LimitsConfig(backend="redis", url_env="LIMITS_URL")
    environ = {"LIMITS_URL": url}
    assert probe(config, environ) == "answers"
    limits = RedisLimits(config, environ)
    assert PASSWORD not in limits.url and "***@127.0.0.1" in limits.url
    assert PASSWORD not in str(limits.status())


def test_a_refused_login_is_a_configuration_error_naming_the_server(locked_redis) -> None:
    config = LimitsConfig(backend="redis", url=locked_redis.url, password_env="REDIS_PW")
    with pytest.raises(ConfigError, match=r"refused the login") as caught:
        probe(config, {"REDIS_PW": "wrong"})
    assert "wrong" not in str(caught.value)
    with pytest.raises(ConfigError, match=r"limits\.url"):  # no password at all
        probe(LimitsConfig(backend="redis", url=locked_redis.url), {})


def test_an_unset_variable_is_named(locked_redis) -> None:
    with pytest.raises(ConfigError, match=r"limits.url_env: \$NOPE is not set"):
        probe(LimitsConfig(backend="redis", url_env="NOPE"), {})
    with pytest.raises(ConfigError, match=r"limits.password_env: \$NOPE is not set"):
        probe(LimitsConfig(backend="redis", url=locked_redis.url, password_env="NOPE"), {})


def test_an_unknown_database_is_a_configuration_error(redis_server) -> None:
    url = redis_server.url.rpartition("/")[0] + "/99"  # redis-server has 16 by default
    with pytest.raises(ConfigError, match=r"DB index"):
        probe(LimitsConfig(backend="redis", url=url), {})


def test_an_unreachable_server_is_reported_not_refused(redis_server) -> None:
    redis_server.stop()
    assert probe(LimitsConfig(backend="redis", url=redis_server.url), {}).startswith("unreachable")


def test_redacted_hides_any_password() -> None:
    assert redacted("redis://user:pw@h:1/0") == "redis://***@h:1/0"
    assert redacted("rediss://:pw@h:1/0?ssl_ca_certs=/x") == "rediss://***@h:1/0?ssl_ca_certs=/x"
    assert redacted("redis://h:1/0") == "redis://h:1/0"


def test_cluster_and_sentinels_are_exclusive() -> None:
    with pytest.raises(ConfigError, match=r"limits\.sentinels"):
        config_from_dict(
            {
                "models": [{"name": "m", "provider": "fake"}],
                "limits": {"backend": "redis", "cluster": True, "sentinels": ["h:1"]},
            }
        )


# --- a real Redis Cluster of three nodes -------------------------------------------------


@pytest.fixture
def redis_cluster() -> Iterator[list[RedisProcess]]:
    redis_process()
    nodes = [
        RedisProcess("--cluster-enabled", "yes", "--cluster-node-timeout", "5000") for _ in range(3)
    ]
    try:
        for node in nodes:
            node.start()
        addresses = [f"127.0.0.1:{n.port}" for n in nodes]
        subprocess.run(
            [
                shutil.which("redis-cli") or "redis-cli",
                "--cluster",
                "create",
                *addresses,
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        _wait_cluster_ok(nodes[0])
        yield nodes
    finally:
        for node in nodes:
            node.cleanup()


def _wait_cluster_ok(node: RedisProcess) -> None:
    """Until the cluster says ok (it gossips its slots after create); bounded."""
    import redis

    client = redis.Redis(port=node.port, socket_timeout=5)
    for _ in range(500):
        if client.cluster("info").get("cluster_state") == "ok":
            return
        subprocess.run(["redis-cli", "-p", str(node.port), "ping"], capture_output=True, timeout=5)
    raise AssertionError("the cluster never became ok")


def test_one_models_keys_share_a_slot_so_a_cluster_works(redis_cluster) -> None:
    """Without the hash tag, a script's three keys fall in different slots (CROSSSLOT)."""
    config = LimitsConfig(backend="redis", url=redis_cluster[0].url, cluster=True)
    assert probe(config, {}) == "answers"
    waits = takes(RedisLimits(config), 5, rpm=60, burst=5)
    assert waits[:4] == [0, 0, 0, 0] and waits[4] > 0
    # Each of several models drew from its own bucket, wherever its slot lives.
    for key in ("alpha", "beta", "gamma"):
        assert takes(RedisLimits(config), 1, rpm=60, burst=5, limit_key=key) == [0]


# --- a real Sentinel -----------------------------------------------------------------------


@pytest.fixture
def sentinel(redis_server, tmp_path) -> Iterator[RedisProcess]:
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"sentinel monitor primary 127.0.0.1 {redis_server.port} 1\n"
        "sentinel down-after-milliseconds primary 5000\n"
    )
    os.chmod(conf, 0o600)
    server = RedisProcess("--sentinel", conf=str(conf), ready="+monitor master").start()
    yield server
    server.cleanup()


def test_sentinel_finds_the_master(sentinel, redis_server) -> None:
    config = LimitsConfig(
        backend="redis", sentinels=(f"127.0.0.1:{sentinel.port}",), service_name="primary"
    )
    assert probe(config, {}) == "answers"
    assert RedisLimits(config).status()["mode"] == "sentinel"
    waits = takes(RedisLimits(config), 5, rpm=60, burst=5)
    assert waits[:4] == [0, 0, 0, 0] and waits[4] > 0
    import redis

    direct = redis.Redis(port=redis_server.port)
    assert any(b"{m}" in key for key in direct.keys("orchestrord:*"))  # on the master


def test_a_bad_sentinel_address_is_named() -> None:
    with pytest.raises(ConfigError, match=r"limits.sentinels\[0\]"):
        probe(LimitsConfig(backend="redis", sentinels=("nope",)), {})


# --- the daemon: --check-config and start-up ----------------------------------------------


def _orchestrord(tmp_path, limits: str, env: dict[str, str], *args: str):
    import sys

    config = tmp_path / "c.toml"
    config.write_text(f'[[models]]\nname = "m"\nprovider = "fake"\n\n[limits]\n{limits}\n')
    state = tmp_path / "state"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRORD")}
    environ.update(env)
    argv = [sys.executable, "-m", "actors.daemon", "--config", str(config), *args]
    sockets = tempfile.mkdtemp(prefix="or-", dir="/tmp")  # short: socket paths are <= 107 bytes
    argv += ["--socket", f"{sockets}/d.sock"]
    environ["XDG_STATE_HOME"] = str(state)
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=environ)


def test_check_config_prints_the_backend_and_that_it_answers(tmp_path, locked_redis) -> None:
    limits = f'backend = "redis"\nurl = "{locked_redis.url}"\npassword_env = "REDIS_PW"'
    done = _orchestrord(tmp_path, limits, {"REDIS_PW": PASSWORD}, "--check-config")
    assert done.returncode == 0, done.stderr
    assert f"limits: redis (single) at {locked_redis.url}: answers" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr


def test_a_refused_login_fails_check_config_and_start_up(tmp_path, locked_redis) -> None:
    limits = f'backend = "redis"\nurl = "{locked_redis.url}"\npassword_env = "REDIS_PW"'
    for args in (("--check-config",), ()):
        done = _orchestrord(tmp_path, limits, {"REDIS_PW": "wrong-pw"}, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert "limits.url: Redis at" in done.stderr and "refused the login" in done.stderr
        assert "Traceback" not in done.stderr and "wrong-pw" not in done.stderr
