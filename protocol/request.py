"""One request body to (request_id, op, args, codec): the decode steps every server runs first."""

from .codec import MSGPACK, decode_body
from .envelope import parse_envelope
from .transfer_request import parse_transfer_request

__all__ = ["decode_request"]


def decode_request(body: bytes) -> tuple:
    """(request_id, op, args, codec, whether args are already validated), or `ProtocolError`
    (`bad_frame`, `bad_request`) for a body that is not a request at all.

    Most traffic is plain transfers, decoded and validated in one step; anything else, and every
    fault, takes the general path, whose args still need `validate_args` (once the op and session
    have been checked, in the contract's order)."""
    common = parse_transfer_request(body)
    if common is not None:
        return (*common, MSGPACK, True)
    request, codec = decode_body(body)
    return (*parse_envelope(request), codec, False)
