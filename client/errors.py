"""Exceptions raised by the SDK.

`SwitchError` is an answer from the switch (it carries the protocol code); `ConnectionLost` and
`RequestTimeout` are transport failures, after which the outcome of a mutating request is unknown.
"""

from protocol import codes


class SwitchError(Exception):
    """The switch answered with an error code (see docs/protocol.md for the list)."""

    def __init__(self, code: str, message: str = ""):
        super().__init__(code, message)
        self.code = code
        self.message = message

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


_BY_CODE = {
    codes.UNAUTHENTICATED: Unauthenticated,
    codes.FORBIDDEN: Forbidden,
    codes.INSUFFICIENT_FUNDS: InsufficientFunds,
}


def error_from_code(code: str, message: str = "") -> SwitchError:
    """The most specific `SwitchError` subclass for a protocol code."""
    cls = _BY_CODE.get(code) or (NotFound if code.endswith("_not_found") else SwitchError)
    return cls(code, message)


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
