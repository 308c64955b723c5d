"""Errors of the daemon's listeners, shared by the daemon and its front doors (a leaf:
``daemon`` imports the doors lazily and the doors import this, never ``daemon``)."""

from __future__ import annotations


class ListenError(OSError):
    """The HTTP front door's address cannot be bound (in use, not ours to take)."""
