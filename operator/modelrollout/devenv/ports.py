"""Free loopback ports for the local processes the demo and the tests start."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nothing listens on right now on 127.0.0.1.

    The socket is closed before the caller binds, so another process could take
    the port in between; callers that start a server check that it came up.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
