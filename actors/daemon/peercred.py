"""Who is on the other end of a Unix socket (``SO_PEERCRED``), for both ends: the daemon
serves only its own uid, and the client talks only to a daemon of its own uid."""

from __future__ import annotations

import socket
import struct


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of the connected Unix socket ``sock``."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)
