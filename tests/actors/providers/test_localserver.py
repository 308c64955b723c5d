"""The local model's server manager, without the model: its files are safe in /tmp."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from actors.providers.localserver import LocalServer


def test_the_server_log_never_follows_a_planted_symlink(tmp_path: Path) -> None:
    """The log used to be /tmp/orchestrord-local-<pid>.log, opened following symlinks:
    another user could point it at any file and a root daemon appended to it."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    os.chmod(victim, 0o600)
    planted = Path(tempfile.gettempdir()) / f"orchestrord-local-{os.getpid()}.log"
    planted.unlink(missing_ok=True)
    planted.symlink_to(victim)
    server = LocalServer(tmp_path / "model.gguf")
    try:
        fd = server._open_log()
        os.write(fd, b"log line\n")
        os.close(fd)
        assert victim.read_text() == "precious\n"
        assert server.log_path is not None and server.log_path != planted
        info = os.lstat(server.log_path)
        assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
        # A restart reopens the same file, and refuses it if it became a symlink.
        os.close(server._open_log())
        server.log_path.unlink()
        server.log_path.symlink_to(victim)
        with pytest.raises(OSError):
            server._open_log()
        assert victim.read_text() == "precious\n"
    finally:
        planted.unlink(missing_ok=True)
        if server.log_path is not None:
            server.log_path.unlink(missing_ok=True)


def test_a_missing_local_extra_is_named_with_the_install_command(monkeypatch) -> None:
    import importlib.util

    from actors.config import config_from_dict
    from actors.providers.local import LocalProvider

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "llama_cpp" else real(name)
    )
    [model] = config_from_dict({"models": [{"name": "l", "provider": "local"}]}).models
    reason = LocalProvider.unusable(model, {})
    assert reason is not None and "llama_cpp" in reason and "pip install -e '.[local]'" in reason
