"""The exception every protocol check raises; `codes` holds the code names."""

from typing import Any

from . import codes

__all__ = ["ProtocolError", "codes"]


class ProtocolError(Exception):
    """A request the protocol layer refuses, with the code its reply carries.

    `request_id` is the request's id when it was readable, else None, so the
    server can answer with the right id (docs/protocol.md: a bad id answers null).
    `details` are extra fields of the error object (`not_primary` carries `primary`).
    """

    def __init__(self, code: str, message: str, request_id: object = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.request_id = request_id
        self.details = details or {}

