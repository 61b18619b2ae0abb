"""The request nearly all traffic is: a MessagePack `transfer` or `create_transfers` of plain
transfers, decoded and validated in one step, mostly in C.

`decode_body` builds every map through a Python hook (to refuse duplicate and bin keys) and
`validate_args` reads every field through a helper; for these requests that was 40% of
`handle_frame`'s time. Here the body is decoded into plain dicts, the shape is checked
with a few set comparisons, and strictness is kept by re-encoding: a body that is not exactly
what `msgpack.packb` writes for the decoded value (a duplicate key, a non-minimal encoding) is
left to the general path, and so is any key or value that is not one of the plain shape's. A
large create_transfers decoded into columns is not re-encoded: its map headers show that no key
is duplicated (_batch_request).
"""

from typing import Any, Callable, NamedTuple

import msgpack

from operator import itemgetter

from .envelope import MAX_INT_ID, MIN_INT_ID, Envelope, is_valid_request_id
from .transfer import plain_columns, plain_fields, plain_transfer
from .values import MAX_ITEMS

__all__ = ["parse_transfer_request", "parse_plain_transfer", "PlainTransfer",
           "parse_plain_transfers", "parse_plain_head", "PlainTransfers",
           "PLAIN_TRANSFER_FIRST_BYTE"]

_ENVELOPE = frozenset(("id", "op", "args"))
# The key "op" and its value as packb writes them: a body without either cannot be the
# canonical encoding of these requests, and a search costs far less than decoding a large body.
_OP_BYTES: tuple[bytes, bytes] = (msgpack.packb("op") + msgpack.packb("transfer"),
             msgpack.packb("op") + msgpack.packb("create_transfers"))
_CREATE_TRANSFERS_ARGS = frozenset(("transfers",))
# The header of a map of three entries, the envelope's id, op and args: the first byte of every
# plain transfer's body (a frame that starts otherwise cannot be one).
PLAIN_TRANSFER_FIRST_BYTE = b"\x83"
_PLAIN_KEYS = 4  # id, debit_account, credit_account, amount
# Bodies longer than this are searched for the op before decoding (a frame of a plain transfer
# is about 100 bytes; decoding a small body costs less than the search).
_SEARCH_OVER_BYTES = 256
# Makes a NamedTuple without the Python-level __new__ every NamedTuple has (per request, that
# call is a tenth of this decode: scripts/bench-session.py counted with callgrind).
_tuple_new = tuple.__new__
# For parse_plain_transfers' column checks.
_first_byte = itemgetter(slice(0, 1))
_FIRST_BYTE_ONLY = frozenset((PLAIN_TRANSFER_FIRST_BYTE,))
_DICT_ONLY = frozenset((dict,))
_INT_ONLY = frozenset((int,))
_THREE_ONLY = frozenset((len(_ENVELOPE),))
_TRANSFER_ONLY = frozenset(("transfer",))
_ENVELOPE_FIELDS = tuple(map(itemgetter, ("op", "id", "args")))
_unpackb = msgpack.unpackb
# One packer, not packb's new one per call (a third of the re-encoding's cost). Sharing it
# between threads is safe: it packs only what unpackb made (exact dicts, lists, str, int), so
# it never runs Python code and holds the GIL from start to end.
_pack: Callable[[object], bytes] = msgpack.Packer().pack


class PlainTransfer(NamedTuple):
    """A `transfer` request of the plain shape, as its fields (see parse_plain_transfer)."""
    request_id: int | str
    transfer_id: str
    debit_account: str
    credit_account: str
    amount: int


class PlainTransfers(NamedTuple):
    """`transfer` requests of the plain shape read together, as columns of their fields (see
    parse_plain_transfers)."""
    request_ids: list[int | str]
    columns: dict[str, Any]  # plain_columns': {ids, debit_accounts, credit_accounts, amounts}


def parse_transfer_request(body: bytes, batch_columns: bool = False) -> Envelope | None:
    """The envelope, args normalized, when `body` is a well-formed MessagePack `transfer` or
    `create_transfers` whose transfers all have the plain shape (id, debit_account,
    credit_account, amount); None for anything else, including every fault: the caller then
    takes the general path (decode_body, parse_envelope, validate_args), which words it.

    With `batch_columns`, the args of such a `create_transfers` are its transfers' fields, one
    column each ({ids, debit_accounts, credit_accounts, amounts}, see plain_columns), not
    8,190 normalized maps: the form the switch executes and logs a plain batch in. Its body is
    not re-encoded (a quarter of the cost): _batch_request reads its map headers instead."""
    if batch_columns and _OP_BYTES[1] in body:
        batch = _batch_request(body)
        if batch is not None:
            columns = _plain_transfers(batch["args"], True)
            return None if columns is None else _tuple_new(
                Envelope, (batch["id"], "create_transfers", columns))
    if _OP_BYTES[0] not in body and _OP_BYTES[1] not in body:
        return None
    request = _request(body)
    if request is None:
        return None
    request_id, op, args = request
    if op == "transfer":
        normalized = plain_transfer(args)
    elif op == "create_transfers":
        normalized = _plain_transfers(args, batch_columns)
    else:
        return None
    if normalized is None:
        return None
    return _tuple_new(Envelope, (request_id, op, normalized))


def parse_plain_transfer(body: bytes) -> PlainTransfer | None:
    """The fields of a well-formed MessagePack `transfer` of the plain shape, without building
    its normalized args (the switch executes a run of these as one group); None for anything
    else, exactly when parse_transfer_request gives no plain `transfer`.

    No re-encoding here: no map can hide a duplicate key when the envelope's header says three
    entries and three distinct keys decode, and args may have at most four entries (more are
    refused at their header) and must decode to the four distinct keys of the plain shape."""
    if body[:1] != PLAIN_TRANSFER_FIRST_BYTE or (len(body) > _SEARCH_OVER_BYTES
                                                 and _OP_BYTES[0] not in body):
        return None
    try:
        request = _unpackb(body, max_ext_len=0, max_map_len=_PLAIN_KEYS)
    except (ValueError, TypeError, msgpack.UnpackException):
        return None
    if type(request) is not dict or request.keys() != _ENVELOPE or request["op"] != "transfer":
        return None
    request_id = request["id"]
    if not is_valid_request_id(request_id):
        return None
    fields = plain_fields(request["args"])
    if fields is None:
        return None
    return _tuple_new(PlainTransfer, (request_id, *fields))


def parse_plain_transfers(bodies: list[bytes]) -> PlainTransfers | None:
    """What parse_plain_transfer gives each of `bodies` (at least one), as columns, when every
    one is a plain `transfer`; None when any is not, or is longer than _SEARCH_OVER_BYTES (the
    caller then takes them one by one). Checked a column at a time, as plain_columns checks a
    batch's transfers: past decoding, no Python call per body (a plain transfer's checks cost
    more than its decoding)."""
    if (set(map(_first_byte, bodies)) != _FIRST_BYTE_ONLY
            or max(map(len, bodies)) > _SEARCH_OVER_BYTES):  # see parse_plain_transfer
        return None
    try:
        requests = [_unpackb(body, max_ext_len=0, max_map_len=_PLAIN_KEYS) for body in bodies]
        # maps of three entries, and these three among them: the envelope's keys exactly
        if set(map(type, requests)) != _DICT_ONLY or set(map(len, requests)) != _THREE_ONLY:
            return None
        ops, request_ids, args = (list(map(field, requests)) for field in _ENVELOPE_FIELDS)
    except (ValueError, TypeError, KeyError, msgpack.UnpackException):
        return None
    if set(ops) != _TRANSFER_ONLY or not _are_valid_request_ids(request_ids):
        return None
    columns = plain_columns(args)
    return None if columns is None else _tuple_new(PlainTransfers, (request_ids, columns))


def parse_plain_head(bodies: list[bytes], max_body_bytes: int) -> PlainTransfers | None:
    """What parse_plain_transfer gives the first of `bodies`, up to the first that is not a
    plain `transfer` or is longer than `max_body_bytes`, as columns (plain_columns'); None when
    the first is not one."""
    head = []
    for body in bodies:
        plain = parse_plain_transfer(body) if len(body) <= max_body_bytes else None
        if plain is None:
            break
        head.append(plain)
    if not head:
        return None
    if len(head) == 1:  # as many connections with a request each send them
        request_id, transfer_id, debit, credit, amount = head[0]
        return _tuple_new(PlainTransfers, ([request_id], {
            "ids": transfer_id, "debit_accounts": debit, "credit_accounts": credit,
            "amounts": [amount]}))
    # ids one a line, as plain_columns makes them (no valid id holds a newline)
    return _tuple_new(PlainTransfers, ([t.request_id for t in head], {
        "ids": "\n".join([t.transfer_id for t in head]),
        "debit_accounts": "\n".join([t.debit_account for t in head]),
        "credit_accounts": "\n".join([t.credit_account for t in head]),
        "amounts": [t.amount for t in head]}))


def _are_valid_request_ids(request_ids: list[Any]) -> bool:
    """is_valid_request_id of each; ints (as clients mostly number their requests) by range."""
    if set(map(type, request_ids)) == _INT_ONLY:
        return bool(MIN_INT_ID <= min(request_ids) and max(request_ids) <= MAX_INT_ID)
    return all(map(is_valid_request_id, request_ids))


def _request(body: bytes) -> tuple[Any, Any, Any] | None:
    """(request id, op, args) of a body that is the canonical MessagePack of a map of the
    envelope's keys with a valid request id; None otherwise."""
    try:
        # Plain maps: keys and values are checked by the callers, duplicates by the
        # re-encoding. A JSON body ("{" is the MessagePack int 123, then more bytes) fails here.
        request = _unpackb(body, max_ext_len=0, max_map_len=MAX_ITEMS)
    except (ValueError, TypeError, msgpack.UnpackException):
        return None
    if type(request) is not dict or not _ENVELOPE.issuperset(request) or _pack(request) != body:
        return None
    request_id = request.get("id")
    if not is_valid_request_id(request_id):
        return None
    return request_id, request.get("op"), request.get("args")


def _batch_request(body: bytes) -> dict[str, Any] | None:
    """The envelope of a `create_transfers` whose maps hide no duplicate key, read by their
    headers rather than by re-encoding the body: the envelope's says three entries and three
    distinct keys decode, args' says one, and no item may have more than four entries (more are
    refused at their header), of which plain_columns wants four distinct keys. A body written
    otherwise than packb writes it (a wider int or length header) decodes to the same request,
    which the general path would take as it is. None for anything else: the caller goes on."""
    unpacker = msgpack.Unpacker(max_ext_len=0, max_map_len=_PLAIN_KEYS,
                                max_buffer_size=len(body))
    unpacker.feed(body)
    request: dict[str, Any] = {}
    try:
        if unpacker.read_map_header() != len(_ENVELOPE):
            return None
        for _ in _ENVELOPE:
            key = unpacker.unpack()
            if key == "args":
                if unpacker.read_map_header() != 1 or unpacker.unpack() != "transfers":
                    return None
                request[key] = {"transfers": unpacker.unpack()}
            else:
                request[key] = unpacker.unpack()
    except (ValueError, TypeError, msgpack.UnpackException):  # OutOfData: cut short
        return None
    if (unpacker.tell() != len(body) or request.keys() != _ENVELOPE
            or request["op"] != "create_transfers" or not is_valid_request_id(request["id"])):
        return None
    return request


def _plain_transfers(args: object, batch_columns: bool) -> dict[str, Any] | None:
    if type(args) is not dict or args.keys() != _CREATE_TRANSFERS_ARGS:
        return None
    items = args["transfers"]
    if type(items) is not list or not 1 <= len(items) <= MAX_ITEMS:
        return None
    if batch_columns:
        return plain_columns(items)
    normalized = [plain_transfer(item) for item in items]
    return {"transfers": normalized} if all(normalized) else None  # normalized items are never empty
