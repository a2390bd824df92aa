"""Is the process that owns a running run still alive? Host identity and process checks for finding dead runs."""

from __future__ import annotations

import socket


def this_host() -> str:
    """This machine's name as runs record it (`host`); a process check is only meaningful on the same host."""
    return socket.gethostname()
