"""The switch's listening sockets, taken before anything else happens at start.

A port in use (or any other bind failure) must be reported before the data directory is
touched: a failed start creates no directory, lock, token or log. So the sockets are bound and
listening first, and handed to the event loop once recovery is done; a client that connects
meanwhile waits in the backlog and is served then.
"""
import socket

from payswitch.protocol.addresses import display_address


class BindFailed(Exception):
    pass


def listening_sockets(host: str, port: int, backlog: int) -> list[socket.socket]:
    """One bound, listening socket per address of `host` (as asyncio's create_server would
    make them: SO_REUSEADDR, IPv6 sockets IPv6 only); BindFailed names the address."""
    sockets: list[socket.socket] = []
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError as error:
        for sock in sockets:
            sock.close()
        reason = error.strerror or str(error)
        raise BindFailed(f"cannot listen on {display_address(host, port)}: {reason[:1].lower()}"
                         f"{reason[1:]}; stop what listens there or choose another "
                         f"--host/--port") from None
    return sockets
