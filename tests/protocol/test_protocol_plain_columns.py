"""A plain create_transfers checked a column at a time (plain_columns, id_lines, all_amounts)
says exactly what checking each item (plain_fields, is_valid_id, is_amount) says."""
import itertools

import msgpack
import pytest

from payswitch.protocol import encode_request, parse_transfer_request
from payswitch.protocol.transfer import plain_columns, plain_fields
from payswitch.protocol.values import all_amounts, id_lines, is_amount, is_valid_id

PLAIN = {"id": "t-1", "debit_account": "a-1", "credit_account": "a-2", "amount": 100}

# valid ids, and each way an id can fail
IDS = ["a", "A-Z.az_09:x", "x" * 64, "", "x" * 65, "a b", "a\n", "\n", "a\nb", "é", "a\x00",
       "?", 1, None, b"a", True, ["a"]]
AMOUNTS = [1, 100, 2**63 - 1, 0, -1, 2**63, True, 1.0, None, "1"]


def combinations(values: list, sizes: tuple[int, ...]) -> list[list]:
    return [list(combo) for size in sizes for combo in itertools.product(values, repeat=size)]


def test_id_lines_is_every_value_an_id():
    for values in combinations(IDS, (1, 2, 3)):
        expected = "\n".join(values) if all(map(is_valid_id, values)) else None
        assert id_lines(values) == expected, values


def test_id_lines_of_no_value_is_none():
    assert id_lines([]) is None


def test_an_id_too_long_is_found_among_many():
    ids = [f"t-{n}" for n in range(8190)]
    assert id_lines(ids) == "\n".join(ids)
    assert id_lines(ids[:4000] + ["x" * 65] + ids[4000:]) is None
    assert id_lines(ids[:4000] + ["x" * 64] + ids[4000:]) is not None


def test_all_amounts_is_every_value_an_amount():
    for values in combinations(AMOUNTS, (1, 2, 3)):
        assert all_amounts(values) is all(map(is_amount, values)), values


def test_all_amounts_of_no_value_is_false():
    assert all_amounts([]) is False


ITEMS = [
    PLAIN,
    {**PLAIN, "id": "t-2", "amount": 2**63 - 1},
    dict(reversed(list(PLAIN.items()))),  # key order does not matter
    {**PLAIN, "amount": 0},
    {**PLAIN, "amount": True},
    {**PLAIN, "id": "bad id"},
    {**PLAIN, "debit_account": None},
    {**PLAIN, "credit_account": "a\n2"},
    {**PLAIN, "linked": True},  # five keys
    {"id": "t", "debit_account": "a", "credit_account": "b"},  # three
    {"id": "t", "debit_account": "a", "credit_account": "b", "reference": "r"},  # not these four
    [1, 2, 3, 4],
    "abcd",
    4,
    None,
]


def test_plain_columns_are_the_fields_of_each_item():
    for items in combinations(ITEMS, (1, 2, 3)):
        fields = [plain_fields(item) for item in items]
        columns = plain_columns(items)
        if None in fields:
            assert columns is None, items
            continue
        ids, debits, credits, amounts = zip(*fields)
        assert columns == {"ids": "\n".join(ids), "debit_accounts": "\n".join(debits),
                           "credit_accounts": "\n".join(credits), "amounts": list(amounts)}


def test_plain_columns_of_no_item_is_none():
    assert plain_columns([]) is None


def test_a_plain_batch_parses_to_the_columns_of_its_normalized_items():
    transfers = [{**PLAIN, "id": f"t-{n}", "amount": n + 1} for n in range(300)]
    body = encode_request(7, "create_transfers", {"transfers": transfers}, "msgpack")[4:]
    normalized = parse_transfer_request(body).args["transfers"]
    envelope = parse_transfer_request(body, batch_columns=True)
    assert (envelope.request_id, envelope.op) == (7, "create_transfers")
    assert envelope.args == {
        "ids": "\n".join(t["id"] for t in normalized),
        "debit_accounts": "\n".join(t["debit_account"] for t in normalized),
        "credit_accounts": "\n".join(t["credit_account"] for t in normalized),
        "amounts": [t["amount"] for t in normalized]}


@pytest.mark.parametrize("transfers", [
    [PLAIN, {**PLAIN, "reference": "r"}],  # one item not plain: the general path normalizes
    [PLAIN, {**PLAIN, "amount": 0}],  # invalid_amount is an item status, not a fault
    [],
    [PLAIN] * 8191,
])
def test_a_batch_that_is_not_all_plain_is_left_to_the_general_path(transfers):
    body = msgpack.packb({"id": 1, "op": "create_transfers", "args": {"transfers": transfers}})
    assert parse_transfer_request(body, batch_columns=True) is None


def test_a_duplicate_key_in_an_item_is_left_to_the_general_path():
    item = msgpack.packb(PLAIN)
    duplicated = b"\x85\xa2id\xa1x" + item[1:]  # "id" twice: the map decodes to PLAIN
    body = (b"\x83\xa2id\x01\xa2op\xb0create_transfers\xa4args\x81\xa9transfers\x92"
            + item + duplicated)
    assert msgpack.unpackb(body)["args"]["transfers"] == [PLAIN, PLAIN]
    assert parse_transfer_request(body, batch_columns=True) is None


def raw_batch(items: list[bytes], array_header: bytes | None = None,
              request_id: bytes = b"\x01", args_keys: bytes = b"\x81\xa9transfers") -> bytes:
    """A create_transfers body assembled from encoded parts, to write any of them otherwise than
    packb does."""
    header = msgpack.Packer().pack_array_header(len(items)) if array_header is None \
        else array_header
    return (b"\x83\xa2id" + request_id + b"\xa2op\xb0create_transfers\xa4args" + args_keys
            + header + b"".join(items))


ITEM = msgpack.packb(PLAIN)  # fixmap, keys in PLAIN's order, "t-1", 100 as a fixint
CANONICAL = [
    raw_batch([ITEM, msgpack.packb({**PLAIN, "id": "t-2"})]),
    raw_batch([msgpack.packb({**PLAIN, "id": f"t-{n}", "amount": amount})
               for n, amount in enumerate([1, 127, 128, 255, 256, 65536, 2**32, 2**63 - 1])]),
    raw_batch([msgpack.packb({**PLAIN, "id": "i" * size, "debit_account": "d" * (size // 2 + 1)})
               for size in (1, 31, 32, 63, 64)]),
    raw_batch([msgpack.packb({**PLAIN, "id": f"t-{n}"}) for n in range(20)]),  # array 16
    raw_batch([ITEM], request_id=msgpack.packb("r" * 40)),
    raw_batch([ITEM], request_id=msgpack.packb(-(2**63))),
]
# the two items of raw_batch([ITEM, ITEM]) written in more bytes than packb writes them
WIDER = [
    raw_batch([ITEM, ITEM.replace(b"\xa3t-1", b"\xd9\x03t-1")]),  # str 8 for a short id
    raw_batch([ITEM, ITEM.replace(b"\xa6amount\x64", b"\xa6amount\xcc\x64")]),  # uint 8: 100
    raw_batch([ITEM, b"\xde\x00\x04" + ITEM[1:]]),  # map 16 for four keys
    raw_batch([ITEM, ITEM], array_header=b"\xdc\x00\x02"),  # array 16 for two items
    b"\x83\xa2id\xcf" + (1).to_bytes(8, "big") + raw_batch([ITEM, ITEM])[5:],  # uint 64 for 1
]
DUPLICATED = [
    raw_batch([ITEM, b"\x85\xa6amount\xcb" + bytes(8) + ITEM[1:]]),  # amount twice, a float first
    raw_batch([ITEM, ITEM], args_keys=b"\x82\xa9transfers\x90\xa9transfers"),  # transfers twice
    b"\x84\xa2id\x02" + raw_batch([ITEM, ITEM])[1:],  # the request id twice
    b"\x84\xa4args\x80" + raw_batch([ITEM, ITEM])[1:],  # args twice
]


@pytest.mark.parametrize("body", WIDER)
def test_a_batch_written_wider_than_packb_parses_to_the_same_columns(body):
    assert parse_transfer_request(body) is None  # not canonical: not this path's without columns
    assert parse_transfer_request(body, batch_columns=True) == \
        parse_transfer_request(raw_batch([ITEM, ITEM]), batch_columns=True)


@pytest.mark.parametrize("body", DUPLICATED)
def test_a_batch_with_a_duplicated_key_is_left_to_the_general_path(body):
    assert msgpack.unpackb(body)["args"]["transfers"][-1] == PLAIN  # decodes to plain items
    assert parse_transfer_request(body) is None
    assert parse_transfer_request(body, batch_columns=True) is None


@pytest.mark.parametrize("body", [raw_batch([ITEM]) + b"\xc0", raw_batch([ITEM])[:-1],
                                  b"\x83" + raw_batch([ITEM])[1:].replace(b"\xa2op", b"\xa2oq")])
def test_a_batch_with_trailing_missing_or_unknown_bytes_is_left_to_the_general_path(body):
    assert parse_transfer_request(body, batch_columns=True) is None
