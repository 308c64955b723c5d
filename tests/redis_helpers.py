"""A real redis-server for tests (``bench.procs.RedisProcess``). Under CI, which installs
it, a missing redis-server fails the test instead of skipping it."""

from __future__ import annotations

import os
import shutil

import pytest

from bench.procs import RedisProcess


def redis_process() -> RedisProcess:
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed; .ci/run installs it")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    return RedisProcess()
