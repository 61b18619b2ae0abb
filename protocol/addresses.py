"""Node addresses as text: `host:port`, `[ipv6]:port`, or a host alone (its port given elsewhere).

The switch prints and advertises addresses (a `not_primary` error's `primary`); the SDK and the
command lines read them. An IPv6 host is written in brackets so that its port stays unambiguous.
"""

__all__ = ["AddressError", "display_address", "parse_address"]

MAX_PORT = 65535


class AddressError(ValueError):
    pass


def display_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_address(text: str) -> tuple[str, int | None]:
    """(host, port) from `host:port`, `[ipv6]:port`, `host`, `[ipv6]` or a bare IPv6 address such
    as `::1` (more than one colon and no brackets: all of it is the host); port None when absent."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not host or (rest and not rest.startswith(":")):
            raise AddressError(f"{text!r} is not an address: expected [IPV6] or [IPV6]:PORT")
        return host, _port(text, rest[1:]) if rest else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        if not host:
            raise AddressError(f"{text!r} is not an address: the host is missing")
        return host, _port(text, port)
    if not text:
        raise AddressError("an address may not be empty")
    return text, None


def _port(text: str, port: str) -> int:
    if not (port.isascii() and port.isdigit() and 1 <= int(port) <= MAX_PORT):
        raise AddressError(f"{text!r} is not an address: the port must be a number from 1 to "
                           f"{MAX_PORT}, got {port!r}")
    return int(port)
