"""Sans-IO wire protocol of the payment switch: frames, codecs, envelope, validation.

Nothing here touches sockets, event loops or clocks: bytes in, values out.
"""

from . import codes
from .codec import (JSON, MSGPACK, codec_of, decode_body, encode_body, encode_body_in_steps,
                    encode_created_frames, encode_msgpack_bodies)
from .envelope import encode_request, error_reply, ok_reply, parse_envelope
from .errors import ProtocolError
from .framing import FrameDecoder, encode_frame
from .request import decode_request
from .transfer_request import (PLAIN_TRANSFER_FIRST_BYTE, PlainTransfer, PlainTransfers,
                               parse_plain_head, parse_plain_transfer, parse_plain_transfers,
                               parse_transfer_request)
from .ops import OPS, OpSpec, is_known_op, validate_args
from .transfer import normalize_transfer
from .values import is_money, is_valid_currency, is_valid_id

__all__ = [
    "FrameDecoder", "encode_frame", "encode_msgpack_bodies",
    "encode_created_frames",
    "codec_of", "decode_body", "encode_body", "encode_body_in_steps", "JSON", "MSGPACK",
    "parse_envelope", "ok_reply", "error_reply", "encode_request", "parse_transfer_request",
    "parse_plain_transfer", "PlainTransfer", "parse_plain_transfers", "parse_plain_head",
    "PlainTransfers",
    "PLAIN_TRANSFER_FIRST_BYTE",
    "decode_request",
    "validate_args", "is_known_op", "OPS", "OpSpec", "normalize_transfer",
    "is_valid_id", "is_valid_currency", "is_money",
    "ProtocolError", "codes",
]
