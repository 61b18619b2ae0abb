"""Ports for tests that need one known before a switch starts, or one where nothing listens."""
import socket


def free_ports(count: int) -> list[int]:
    """`count` distinct ports that were free a moment ago (bound together, then released), so
    nothing listens there."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    return free_ports(1)[0]
