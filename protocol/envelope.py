"""The request/reply envelope around every operation."""

from typing import Any, NamedTuple, TypeGuard

from .codec import encode_body
from .codes import BAD_REQUEST
from .framing import encode_frame
from .errors import ProtocolError

__all__ = ["Envelope", "parse_envelope", "ok_reply", "error_reply", "encode_request",
           "is_valid_request_id"]

MIN_INT_ID = -(2**63)
MAX_INT_ID = 2**64 - 1
MAX_STR_ID_CHARS = 256


class Envelope(NamedTuple):
    """A request's envelope: its id (an int or a str), op name and args."""
    request_id: int | str
    op: str
    args: dict[str, Any]


def is_valid_request_id(request_id: object) -> TypeGuard[int | str]:
    """An int in -2^63..2^64-1 (not a bool) or a str of at most 256 characters."""
    if type(request_id) is int:
        return MIN_INT_ID <= request_id <= MAX_INT_ID
    return type(request_id) is str and len(request_id) <= MAX_STR_ID_CHARS


def parse_envelope(obj: dict[str, Any]) -> Envelope:
    """Split a decoded request into its Envelope; args default to {}.

    Does not check the op name. A missing or invalid id raises `bad_request`
    with request_id None; later faults carry the id so the reply can echo it.
    """
    request_id = obj.get("id")
    if not is_valid_request_id(request_id):
        raise ProtocolError(
            BAD_REQUEST, "id must be an integer in -2^63..2^64-1 or a string of at most 256 characters"
        )
    op = obj.get("op")
    if type(op) is not str:
        raise ProtocolError(BAD_REQUEST, "op must be a string", request_id)
    args = obj.get("args")
    if args is None:
        return Envelope(request_id, op, {})
    if type(args) is not dict:
        raise ProtocolError(BAD_REQUEST, "args must be a map or null", request_id)
    return Envelope(request_id, op, args)


def ok_reply(request_id: object, result: object) -> dict[str, Any]:
    return {"id": request_id, "ok": True, "result": result}


def error_reply(request_id: object, code: str, message: str,
                **details: object) -> dict[str, Any]:
    """`details` are extra fields of the error object (`not_primary` carries `primary`)."""
    return {"id": request_id, "ok": False,
            "error": {"code": code, "message": message, **details}}


def encode_request(request_id: object, op: str, args: dict[str, Any], codec: str) -> bytes:
    """One whole request frame, ready to write to the socket."""
    return encode_frame(encode_body({"id": request_id, "op": op, "args": args}, codec))
