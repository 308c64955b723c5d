"""The installed version of orchestrord (one place; light enough for orchestrctl)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("orchestrord")
except PackageNotFoundError:  # running from a checkout that was never installed
    VERSION = "0.0.0+checkout"
