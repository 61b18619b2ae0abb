import msgpack
import pytest

from payswitch.protocol import (JSON, MSGPACK, decode_body, encode_body, encode_request, parse_envelope,
                      parse_plain_head, parse_plain_transfer, parse_plain_transfers,
                      parse_transfer_request,
                      validate_args)

PLAIN = {"id": "t-1", "debit_account": "a-1", "credit_account": "a-2", "amount": 100}


def body_of(request: dict) -> bytes:
    return msgpack.packb(request)


def general_path(body: bytes) -> tuple:
    request_id, op, args = parse_envelope(decode_body(body)[0])
    return request_id, op, validate_args(op, args)


@pytest.mark.parametrize("request_id", [7, -1, 2**64 - 1, "r-1", "x" * 256])
@pytest.mark.parametrize("op, args", [
    ("transfer", PLAIN),
    ("create_transfers", {"transfers": [PLAIN, {**PLAIN, "id": "t-2", "amount": 2**63 - 1}]}),
    ("create_transfers", {"transfers": [{**PLAIN, "id": f"{'i' * 60}.{n}"} for n in range(40)]}),
])
def test_plain_requests_parse_as_the_general_path_does(request_id, op, args):
    body = encode_request(request_id, op, args, MSGPACK)[4:]
    assert parse_transfer_request(body) == general_path(body)


def test_key_order_does_not_matter():
    args = dict(reversed(list(PLAIN.items())))
    body = body_of({"args": args, "op": "transfer", "id": 1})
    assert parse_transfer_request(body) == general_path(body)


NOT_PLAIN = [
    b"",
    encode_body({"id": 1, "op": "transfer", "args": PLAIN}, JSON),            # JSON
    body_of({"id": 1, "op": "ping"}),                                        # another op
    body_of({"id": 1, "op": "transfer", "args": PLAIN, "x": 1}),             # unknown envelope key
    body_of({"id": 1.0, "op": "transfer", "args": PLAIN}),                   # bad id
    body_of({"op": "transfer", "args": PLAIN}),                              # no id
    body_of({"id": 1, "op": "transfer"}),                                    # no args
    body_of({"id": 1, "op": "transfer", "args": {**PLAIN, "linked": True}}),  # not plain
    body_of({"id": 1, "op": "transfer", "args": {**PLAIN, "amount": 0}}),     # invalid amount
    body_of({"id": 1, "op": "transfer", "args": {**PLAIN, "amount": {b"k": 1}}}),  # bin key
    body_of({"id": 1, "op": "transfer", "args": {**PLAIN, "id": "bad id"}}),
    body_of({"id": 1, "op": "transfer", "args": {**PLAIN, "debit_account": None}}),
    body_of({"id": 1, "op": "create_transfers", "args": {"transfers": []}}),
    body_of({"id": 1, "op": "create_transfers", "args": {"transfers": [PLAIN, 1]}}),
    body_of({"id": 1, "op": "create_transfers", "args": {"transfers": PLAIN}}),
    body_of({"id": 1, "op": "create_transfers", "args": {"transfers": [PLAIN], "x": 1}}),
    body_of({"id": 1, "op": "create_transfers", "args": {"transfers": [PLAIN] * 8191}}),
    body_of({"id": 1, "op": "transfer", "args": PLAIN}) + b"\xc0",          # trailing bytes
    body_of({"id": 1, "op": "transfer", "args": PLAIN})[:-1],               # truncated
    body_of({"id": 1, "op": "transfer", "args": PLAIN, "op2": msgpack.ExtType(5, b"")}),
    # a duplicate key: the decoded map has one key fewer than the body
    b"\x84\xa2id\x01\xa2id\x02\xa2op\xa8transfer\xa4args" + body_of(PLAIN),
]
# a non-minimal encoding of the id (uint 64 for 1): not what packb writes
NON_MINIMAL = b"\x83\xa2id\xcf" + (1).to_bytes(8, "big") + b"\xa2op\xa8transfer\xa4args" + \
    body_of(PLAIN)


@pytest.mark.parametrize("body", NOT_PLAIN + [NON_MINIMAL])
def test_anything_else_is_left_to_the_general_path(body):
    assert parse_transfer_request(body) is None


def plain_fields_of(body: bytes) -> tuple:
    request_id, _, args = general_path(body)
    return (request_id, args["id"], args["debit_account"], args["credit_account"],
            args["amount"])


@pytest.mark.parametrize("request_id", [7, -1, 2**64 - 1, "r-1", "x" * 256])
def test_a_plain_transfer_parses_to_the_general_paths_fields(request_id):
    body = encode_request(request_id, "transfer", PLAIN, MSGPACK)[4:]
    assert parse_plain_transfer(body) == plain_fields_of(body)
    reordered = body_of({"args": dict(reversed(list(PLAIN.items()))), "op": "transfer",
                         "id": request_id})
    assert parse_plain_transfer(reordered) == plain_fields_of(reordered)


NOT_PLAIN_TRANSFER = NOT_PLAIN + [
    body_of({"id": 1, "op": "create_transfers", "args": {"transfers": [PLAIN]}}),
    # a duplicate key in args: five entries, refused at the map's header
    body_of({"id": 1, "op": "transfer", "args": PLAIN})[:-len(body_of(PLAIN))]
    + b"\x85\xa2id\xa1x" + body_of(PLAIN)[1:],
    # three entries with a duplicate: two keys decode
    b"\x83\xa2id\x01\xa2id\x02\xa4args" + body_of(PLAIN),
    b"\x83\xa2id\x01\xa2op\xa8transfer\xa4args" + body_of(PLAIN) + b"\xc0",
]


@pytest.mark.parametrize("body", NOT_PLAIN_TRANSFER)
def test_parse_plain_transfer_leaves_anything_else_to_the_general_path(body):
    assert parse_plain_transfer(body) is None


def test_a_non_minimal_encoding_parses_to_the_values_the_general_path_reads():
    assert parse_plain_transfer(NON_MINIMAL) == plain_fields_of(NON_MINIMAL)


def test_a_bin_key_is_left_to_the_general_path():
    body = msgpack.packb({"id": 1, "op": "transfer", "args": {**PLAIN, b"id": "x"}},
                         use_bin_type=True)
    assert parse_transfer_request(body) is None


def plain_body(request_id, n: int) -> bytes:
    return encode_request(request_id, "transfer", {**PLAIN, "id": f"t-{n}", "amount": n + 1},
                          MSGPACK)[4:]


@pytest.mark.parametrize("request_ids", [list(range(16)), [2**64 - 1, -(2**63), 0],
                                         ["r-1", 2, "x" * 100]])
def test_plain_transfers_in_columns_are_what_parse_plain_transfer_gives_each(request_ids):
    bodies = [plain_body(request_id, n) for n, request_id in enumerate(request_ids)]
    bodies.append(body_of({"args": dict(reversed(list(PLAIN.items()))), "op": "transfer",
                           "id": 99}))
    parsed = parse_plain_transfers(bodies)
    each = [parse_plain_transfer(body) for body in bodies]
    assert parsed.request_ids == [t.request_id for t in each]
    assert parsed.columns == {
        "ids": "\n".join(t.transfer_id for t in each),
        "debit_accounts": "\n".join(t.debit_account for t in each),
        "credit_accounts": "\n".join(t.credit_account for t in each),
        "amounts": [t.amount for t in each]}


@pytest.mark.parametrize("head", [1, 2, 5])
def test_the_plain_head_is_the_plain_transfers_up_to_the_first_that_is_not_one(head):
    """As many connections with a request each send them (one), or a read that mixes ops."""
    bodies = [plain_body(n, n) for n in range(head)]
    rest = [encode_request(head, "ping", {}, MSGPACK)[4:], plain_body(head + 1, head + 1)]
    parsed = parse_plain_head(bodies + rest, max_body_bytes=len(bodies[0]))
    assert parsed == parse_plain_transfers(bodies)
    assert parsed.request_ids == list(range(head))


def test_no_plain_head_when_the_first_is_not_one_or_is_too_long():
    ping, plain = encode_request(1, "ping", {}, MSGPACK)[4:], plain_body(2, 2)
    assert parse_plain_head([ping, plain], max_body_bytes=1024) is None
    assert parse_plain_head([plain], max_body_bytes=len(plain) - 1) is None


@pytest.mark.parametrize("body", NOT_PLAIN_TRANSFER + [
    plain_body("x" * 257, 0), plain_body(True, 0), plain_body(1.0, 0), body_of({"id": 1, "op": "transfer", "args": {**PLAIN, "id": "a\nb"}}),
    # a plain transfer, but too long to decode before looking for its op
    encode_request("r" * 200, "transfer", {**PLAIN, "id": "t" * 64}, MSGPACK)[4:]])
def test_one_body_that_is_not_a_plain_transfer_leaves_all_to_one_by_one(body):
    bodies = [plain_body(n, n) for n in range(8)]
    bodies.insert(3, body)
    assert parse_plain_transfers(bodies) is None
