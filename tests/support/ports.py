"""Ports for tests that need one known before a switch starts, or one where nothing listens."""
import socket


def free_port() -> int:
    """A port that was free a moment ago: bound, then released, so nothing listens there."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
