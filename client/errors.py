"""Exceptions raised by the SDK.

`SwitchError` is an answer from the switch (it carries the protocol code); `ConnectionLost` and
`RequestTimeout` are transport failures, after which the outcome of a mutating request is unknown.
"""

from collections.abc import Mapping
from typing import Any

from payswitch.protocol import codes


class SwitchError(Exception):
    """The switch answered with an error code (see docs/protocol.md for the list). `details`: the
    error object's other fields, such as `primary` of `not_primary`."""

    def __init__(self, code: str, message: str = "", details: Mapping[str, Any] | None = None):
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.details = dict(details or {})

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.message else self.code


class Unauthenticated(SwitchError):
    pass


class Forbidden(SwitchError):
    pass


class InsufficientFunds(SwitchError):
    pass


class NotFound(SwitchError):
    """Any `*_not_found` code (account, participant, pending transfer, batch, window)."""


class NotPrimary(SwitchError):
    """`not_primary`: the node is a standby, or stopped being the primary while the request was
    in flight (then it may or may not have committed). Requests that are safe to resend are sent
    to the primary by the SDK itself; this reaches the caller for those that are not, and for
    reads still refused at the retry deadline."""

    @property
    def primary(self) -> str | None:
        """The primary's "host:port" as the node advertises it; None while unknown."""
        primary = self.details.get("primary")
        return primary if isinstance(primary, str) else None


_BY_CODE = {
    codes.UNAUTHENTICATED: Unauthenticated,
    codes.FORBIDDEN: Forbidden,
    codes.INSUFFICIENT_FUNDS: InsufficientFunds,
    codes.NOT_PRIMARY: NotPrimary,
}


def error_from_code(code: str, message: str = "",
                    details: Mapping[str, Any] | None = None) -> SwitchError:
    """The most specific `SwitchError` subclass for a protocol code."""
    cls = _BY_CODE.get(code) or (NotFound if code.endswith("_not_found") else SwitchError)
    return cls(code, message, details)


class TransportError(Exception):
    """The request may or may not have been executed by the switch."""


class ConnectionLost(TransportError, ConnectionError):
    """The connection failed, was closed, or could not be opened."""


class ProtocolViolation(ConnectionLost):
    """The peer broke the wire contract (for example a reply id that is not the expected one);
    the connection was closed so that no request can be handed another's reply."""


class OutcomeUnknown(TransportError):
    """A state-changing request was retried until the retry deadline and it is still unknown
    whether the switch executed it: it may have committed. Not a failure: resend it with the
    same id (ids are idempotency keys) to learn the outcome, `exists` if it had committed."""


class RequestTimeout(TransportError, TimeoutError):
    """No reply within `timeout_s`; the connection it was sent on has been closed."""
