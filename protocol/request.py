"""One request body to a DecodedRequest: the decode steps every server runs first."""

from typing import Any, NamedTuple

from .codec import MSGPACK, decode_body
from .envelope import parse_envelope
from .transfer_request import parse_transfer_request

__all__ = ["DecodedRequest", "decode_request"]

_tuple_new = tuple.__new__


class DecodedRequest(NamedTuple):
    request_id: int | str
    op: str
    args: dict[str, Any]
    codec: str  # the body's codec, which the reply is in
    validated: bool  # whether args are normalized already (else validate_args them)


def decode_request(body: bytes, batch_columns: bool = False) -> DecodedRequest:
    """The request in `body`, or `ProtocolError` (`bad_frame`, `bad_request`) for a body that is
    not a request at all. With `batch_columns`, the args of a plain `create_transfers` are
    columns (see parse_transfer_request).

    Most traffic is plain transfers, decoded and validated in one step; anything else, and every
    fault, takes the general path, whose args still need `validate_args` (once the op and session
    have been checked, in the contract's order)."""
    plain = parse_transfer_request(body, batch_columns)
    if plain is not None:  # without NamedTuple's Python-level __new__: once per request
        return _tuple_new(DecodedRequest, (plain.request_id, plain.op, plain.args, MSGPACK, True))
    request, codec = decode_body(body)
    envelope = parse_envelope(request)
    return DecodedRequest(envelope.request_id, envelope.op, envelope.args, codec, False)
