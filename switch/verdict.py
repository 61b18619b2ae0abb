"""The decode worker's verdict on one frame (see switch/decode_worker.py)."""
from typing import Any, NamedTuple

from payswitch.protocol import OPS, ProtocolError, codec_of, decode_request, validate_args


class Problem(NamedTuple):
    """The error a frame gets instead of being executed."""
    code: str
    message: str


class Verdict(NamedTuple):
    """What the switch would conclude from a frame before executing it.

    With `problem` None, `args` are the op's normalized args (None for an unknown op: the
    switch says so itself); those of a MessagePack `create_transfers` of plain transfers are
    columns of their fields instead (protocol.plain_columns), which cost a few percent of
    8,190 normalized maps to pickle and load, and which the ledger executes and the WAL logs as
    they are. Otherwise, with `op` None, it is a decode or envelope error (the contract's first
    checks), else an argument error, raised after the op and session checks, as for a frame
    decoded inline.
    """
    codec: str
    request_id: Any
    op: str | None
    args: Any
    problem: Problem | None


def verdict(body: bytes) -> Verdict:
    """What the switch would conclude from `body` before executing it."""
    codec = codec_of(body)
    try:
        request_id, op, args, codec, validated = decode_request(body, batch_columns=True)
    except ProtocolError as error:
        return Verdict(codec, error.request_id, None, None, Problem(error.code, error.message))
    if op not in OPS:
        return Verdict(codec, request_id, op, None, None)
    if not validated:
        try:
            args = validate_args(op, args)
        except ProtocolError as error:
            return Verdict(codec, request_id, op, None, Problem(error.code, error.message))
    return Verdict(codec, request_id, op, args, None)
