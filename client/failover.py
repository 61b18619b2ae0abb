"""Which of the switch's nodes to talk to, and when to try again: the address list in the order to
try it, the node in use, a `not_primary` error's pointer to the primary, and the capped, jittered
backoff between attempts. The SDK and the load generator fail over by these same rules."""

import random
from collections.abc import Iterable

from payswitch.protocol import codes
from payswitch.protocol.addresses import MAX_PORT, AddressError, display_address, parse_address

Address = tuple[str, int]

# Answers after which a request that is safe to repeat is resent. Not executed: overloaded, and
# shutting_down (the node takes no new work). Not acknowledged, perhaps applied: unavailable, and
# not_primary from a primary that lost its lease.
NOT_EXECUTED_CODES = frozenset({codes.OVERLOADED, codes.SHUTTING_DOWN})
RESENT_CODES = NOT_EXECUTED_CODES | {codes.UNAVAILABLE, codes.NOT_PRIMARY}
# Of those, the answers of a node that takes no requests now: the next attempt goes to another
# (the primary a not_primary names, else the next address).
LEAVE_CODES = frozenset({codes.NOT_PRIMARY, codes.SHUTTING_DOWN})

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 7878
DEFAULT_RETRY_DEADLINE_S = 10.0  # outlasts a failover (about 3 s) or a quick restart
DEFAULT_BACKOFF_S = 0.05
DEFAULT_MAX_BACKOFF_S = 1.0


def to_address(entry: str | Address) -> Address:
    """(host, port) from "host:port", "[ipv6]:port" or a (host, port) pair."""
    if isinstance(entry, str):
        host, port = parse_address(entry)
        if port is None:
            raise AddressError(f"{entry!r} has no port: write HOST:PORT or [IPV6]:PORT")
        return host, port
    if (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str) and entry[0]
            and type(entry[1]) is int and 1 <= entry[1] <= MAX_PORT):
        return entry
    raise AddressError(f"{entry!r} is not an address: expected \"host:port\" or (host, port)")


def advertised_primary(primary: object) -> Address | None:
    """The `primary` field of a `not_primary` error as an address; None while the node knows no
    primary (null), or when what it advertises cannot be used."""
    if not isinstance(primary, str):
        return None
    try:
        host, port = parse_address(primary)
    except AddressError:
        return None
    return None if port is None else (host, port)


def describe(addresses: Iterable[Address]) -> str:
    return ", ".join(display_address(*address) for address in addresses)


class Nodes:
    """The switch's addresses in the order given, and the one in use (at first the first)."""

    def __init__(self, addresses: Iterable[Address]):
        self._all = list(dict.fromkeys(addresses))
        if not self._all:
            raise ValueError("at least one address is needed")
        self._current = 0

    @property
    def current(self) -> Address:
        return self._all[self._current]

    @property
    def all(self) -> list[Address]:
        return list(self._all)

    def use(self, address: Address) -> None:
        """Make `address` the one in use, adding it to the list if it is new (a primary that
        a standby named)."""
        if address not in self._all:
            self._all.append(address)
        self._current = self._all.index(address)

    def round(self, skip_current: bool = False) -> list[Address]:
        """Every address once, in order from the one in use; `skip_current`: from the one after
        it, so that the node that just failed is tried last."""
        start, count = self._current + skip_current, len(self._all)
        return [self._all[(start + i) % count] for i in range(count)]


def backoff_s(attempt: int, first_s: float, max_s: float) -> float:
    """The wait before retry number `attempt` (from 0): `first_s` doubling up to `max_s`, each
    jittered to between half and all of it so that many clients do not reconnect in step."""
    # The exponent is capped too: a float overflows past 2^1023.
    return min(max_s, first_s * 2 ** min(attempt, 60)) * random.uniform(0.5, 1.0)
