"""Where a connection of the load goes when it must leave its node, and when: the SDK's rules
(client/failover.py), kept per connection rather than per request, because a connection resends
everything it has in flight at once."""

from dataclasses import dataclass

from payswitch.client import (
    DEFAULT_BACKOFF_S, DEFAULT_MAX_BACKOFF_S, LEAVE_CODES, Address, Nodes, advertised_primary,
    backoff_s,
)
from payswitch.protocol import codes

CONNECTION_LOST = "connection_lost"
# Answers after which a connection reconnects and resends what it has in flight (`overloaded`
# stays an error here: the load generator measures it).
RECONNECT_CODES = LEAVE_CODES | {codes.UNAVAILABLE}


@dataclass(frozen=True)
class Move:
    reason: str  # what the resent requests count under: connection_lost or the code answered
    skip_current: bool  # try the node in use last (it failed or is a standby), not first
    wait: bool  # back off before reconnecting


class Failover:
    """One connection's nodes and retry streak: the streak starts when the connection has to
    leave its node and ends once a reply is read again; reconnecting stops `deadline_s` after it
    started."""

    def __init__(self, addresses: tuple[Address, ...], deadline_s: float):
        self.nodes = Nodes(addresses)
        self._deadline_s = deadline_s
        self._since_s: float | None = None
        self._attempt = 0  # backoffs waited in this streak
        self._followed: set[Address] = set()  # primaries gone to in this streak

    def lost(self) -> Move:
        return Move(CONNECTION_LOST, skip_current=True, wait=True)

    @property
    def retrying(self) -> bool:
        return self._since_s is not None

    def answered(self, error: dict) -> Move:
        """After a reply of RECONNECT_CODES: to the primary a standby names (at once the first
        time), else to the next node; `unavailable`: to the same node again, after a backoff."""
        code = error["code"]
        if code == codes.UNAVAILABLE:
            return Move(code, skip_current=False, wait=True)
        primary = advertised_primary(error.get("primary"))
        if primary is None:
            return Move(code, skip_current=True, wait=True)
        followed_before = primary in self._followed
        self._followed.add(primary)
        self.nodes.use(primary)
        return Move(code, skip_current=False, wait=followed_before)

    def deadline_s(self, now_s: float) -> float:
        """When reconnecting stops, the streak starting now unless it already runs."""
        if self._since_s is None:
            self._since_s = now_s
        return self._since_s + self._deadline_s

    def backoff_s(self) -> float:
        self._attempt += 1
        return backoff_s(self._attempt - 1, DEFAULT_BACKOFF_S, DEFAULT_MAX_BACKOFF_S)

    def answering(self) -> None:
        """A reply was read: the streak, if any, is over."""
        if self._since_s is not None:
            self._since_s, self._attempt = None, 0
            self._followed.clear()
