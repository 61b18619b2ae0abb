import base64

import msgpack
import pytest

from payswitch.protocol import OPS, ProtocolError, codes, is_known_op, validate_args

MUTATING = {
    "create_participants", "set_participant", "create_accounts", "create_transfers", "transfer",
    "close_window", "upload_batch_part", "submit_batch", "rotate_token",
}
READING = {
    "ping", "hello", "stats", "lookup_accounts", "lookup_transfers", "get_account_transfers",
    "get_window", "get_window_matrix", "list_windows", "get_batch", "get_batch_results",
    "state_digest", "get_participant",
}


def refused(op: str, args, *words: str) -> str:
    with pytest.raises(ProtocolError) as info:
        validate_args(op, args)
    assert info.value.code == codes.BAD_REQUEST
    for word in words:
        assert word in info.value.message
    return info.value.message


def test_op_table():
    assert set(OPS) == MUTATING | READING
    assert {name for name, spec in OPS.items() if spec.mutating} == MUTATING
    assert all(spec.name == name for name, spec in OPS.items())


def test_is_known_op():
    assert is_known_op("transfer") and not is_known_op("Transfer") and not is_known_op(["ping"])


def test_unknown_op():
    with pytest.raises(ProtocolError) as info:
        validate_args("drop_tables", {})
    assert info.value.code == codes.UNKNOWN_OP


def test_args_must_be_a_map():
    refused("ping", [], "args")


@pytest.mark.parametrize("op", ["ping", "stats", "close_window", "list_windows"])
def test_ops_without_args(op):
    assert validate_args(op, {}) == {}
    refused(op, {"x": 1}, "unknown field", "x")


def test_hello():
    assert validate_args("hello", {"participant": "admin", "token": "s3cret"}) == {
        "participant": "admin", "token": "s3cret"}
    refused("hello", {"participant": "bank a", "token": "t"}, "participant")
    refused("hello", {"participant": "admin", "token": ""}, "token")
    refused("hello", {"participant": "admin", "token": "t" * 257}, "token")
    refused("hello", {"participant": "admin"}, "token")
    refused("hello", {"participant": "admin", "token": "t", "tokn": "t"}, "tokn")


# --- participants ---

def test_create_participants_fills_empty_caps():
    args = {"participants": [{"id": "bank-a", "name": "Bank A"},
                             {"id": "bank-b", "name": "B", "net_debit_cap": {"USD": 0, "EUR": 2**63 - 1}},
                             {"id": "bank-c", "name": "C", "net_debit_cap": None}]}
    assert validate_args("create_participants", args) == {"participants": [
        {"id": "bank-a", "name": "Bank A", "net_debit_cap": {}},
        {"id": "bank-b", "name": "B", "net_debit_cap": {"USD": 0, "EUR": 2**63 - 1}},
        {"id": "bank-c", "name": "C", "net_debit_cap": {}}]}


@pytest.mark.parametrize("item, word", [
    ({"id": "b", "name": ""}, "name"),
    ({"id": "b", "name": "x" * 257}, "name"),
    ({"id": "b"}, "name"),
    ({"name": "B"}, "id"),
    ({"id": "b", "name": "B", "net_debit_cap": {"usd": 1}}, "net_debit_cap"),
    ({"id": "b", "name": "B", "net_debit_cap": {"USD": -1}}, "net_debit_cap.USD"),
    ({"id": "b", "name": "B", "net_debit_cap": {"USD": None}}, "net_debit_cap.USD"),
    ({"id": "b", "name": "B", "net_debit_cap": {"USD": 1.0}}, "net_debit_cap.USD"),
    ({"id": "b", "name": "B", "net_debit_cap": [1]}, "net_debit_cap"),
    ({"id": "b", "name": "B", "token_hash": "x"}, "token_hash"),
])
def test_create_participants_refusals(item, word):
    message = refused("create_participants", {"participants": [item]}, word)
    assert message.startswith("participants[0]: ")


@pytest.mark.parametrize("participants", [[], None, {"id": "b"}])
def test_create_participants_list_shape(participants):
    refused("create_participants", {"participants": participants}, "participants")


def test_set_participant_none_means_unchanged():
    assert validate_args("set_participant", {"id": "b"}) == {
        "id": "b", "net_debit_cap": None, "suspended": None}


def test_set_participant_null_cap_value_removes_that_cap():
    args = {"id": "b", "net_debit_cap": {"USD": None, "EUR": 5}, "suspended": True}
    assert validate_args("set_participant", args) == args


@pytest.mark.parametrize("args, word", [
    ({"id": "b", "suspended": 1}, "suspended"),
    ({"id": "b", "net_debit_cap": {"USD": True}}, "net_debit_cap.USD"),
    ({"id": "b", "net_debit_cap": "none"}, "net_debit_cap"),
    ({"suspended": False}, "id"),
    ({"id": "b", "name": "x"}, "name"),
])
def test_set_participant_refusals(args, word):
    refused("set_participant", args, word)


# --- accounts ---

def test_create_accounts_overdraft_omitted_is_zero_and_null_is_unlimited():
    args = {"accounts": [
        {"id": "a-1", "participant": "bank-a", "currency": "USD"},
        {"id": "a-2", "participant": "bank-a", "currency": "USD", "overdraft_limit": None},
        {"id": "a-3", "participant": "bank-a", "currency": "USD", "overdraft_limit": 500},
    ]}
    limits = [item["overdraft_limit"] for item in validate_args("create_accounts", args)["accounts"]]
    assert limits == [0, None, 500]


@pytest.mark.parametrize("changes, word", [
    ({"overdraft_limit": -1}, "overdraft_limit"),
    ({"overdraft_limit": 2**63}, "overdraft_limit"),
    ({"overdraft_limit": 1.0}, "overdraft_limit"),
    ({"overdraft_limit": False}, "overdraft_limit"),
    ({"currency": "EURO"}, "currency"),
    ({"currency": None}, "currency"),
    ({"participant": ""}, "participant"),
    ({"id": "a" * 65}, "id"),
    ({"balance": 0}, "balance"),
])
def test_create_accounts_refusals(changes, word):
    item = {"id": "a-1", "participant": "bank-a", "currency": "USD", **changes}
    assert refused("create_accounts", {"accounts": [item]}, word).startswith("accounts[0]: ")


# --- lookups ---

@pytest.mark.parametrize("op", ["lookup_accounts", "lookup_transfers"])
def test_lookups(op):
    assert validate_args(op, {"ids": []}) == {"ids": []}
    assert validate_args(op, {"ids": ["a"] * 8190}) == {"ids": ["a"] * 8190}
    refused(op, {"ids": ["a"] * 8191}, "ids")
    refused(op, {}, "ids")
    refused(op, {"ids": ["a", "b c"]}, "ids[1]")


def test_get_account_transfers_defaults_and_limits():
    assert validate_args("get_account_transfers", {"account": "a-1"}) == {
        "account": "a-1", "after": None, "limit": 100}
    args = {"account": "a-1", "after": 0, "limit": 8190}
    assert validate_args("get_account_transfers", args) == args


@pytest.mark.parametrize("after, cursor", [
    ("0", 0), ("1763772000000000002", 1763772000000000002), (str(2**63 - 1), 2**63 - 1),
    ("007", 7), (2**63 - 1, 2**63 - 1),
])
def test_get_account_transfers_after_is_an_integer_or_its_decimal_string(after, cursor):
    normalized = validate_args("get_account_transfers", {"account": "a-1", "after": after})
    assert normalized["after"] == cursor and type(normalized["after"]) is int


def test_get_account_transfers_after_refusal_names_the_rule():
    with pytest.raises(ProtocolError) as caught:
        validate_args("get_account_transfers", {"account": "a-1", "after": "12ab"})
    assert caught.value.message == (
        f"after '12ab' must be an integer in 0..{2**63 - 1} or a string of its decimal digits")


def test_get_account_transfers_after_nested_deeper_than_the_stack_is_a_bad_request():
    after = 0
    for _ in range(100_000):  # its repr would overflow the stack
        after = [after]
    with pytest.raises(ProtocolError) as caught:
        validate_args("get_account_transfers", {"account": "a-1", "after": after})
    assert caught.value.message.startswith("after a list must be an integer")


@pytest.mark.parametrize("args, word", [
    ({"account": "a-1", "limit": 0}, "limit"),
    ({"account": "a-1", "limit": 8191}, "limit"),
    ({"account": "a-1", "after": -1}, "after"),
    ({"account": "a-1", "after": "1x"}, "after '1x'"),
    ({"account": "a-1", "after": ""}, "after ''"),
    ({"account": "a-1", "after": "-1"}, "after '-1'"),
    ({"account": "a-1", "after": " 1"}, "after ' 1'"),
    ({"account": "a-1", "after": "\uff11"}, "after"),  # a digit, but not an ASCII one
    ({"account": "a-1", "after": str(2**63)}, f"after '{2**63}'"),
    ({"account": "a-1", "after": 2**63}, f"after {2**63}"),
    ({"account": "a-1", "after": "9" * 5000}, "after '99999"),
    ({"account": "a-1", "after": 1.5}, "after 1.5"),
    ({"account": "a-1", "after": True}, "after True"),
    ({"after": 5}, "account"),
])
def test_get_account_transfers_refusals(args, word):
    refused("get_account_transfers", args, word)


# --- windows ---

def test_get_window():
    assert validate_args("get_window", {"window_id": 1}) == {"window_id": 1}
    for window_id in [0, -1, True, "1", None, 1.0]:
        refused("get_window", {"window_id": window_id}, "window_id")


# --- batches ---

def test_upload_batch_part_accepts_bin_or_canonical_base64():
    raw = b"id,debit_account\n\x00\xff"
    expected = {"batch_id": "b-1", "seq": 0, "data": raw}
    assert validate_args("upload_batch_part", {"batch_id": "b-1", "seq": 0, "data": raw}) == expected
    text = base64.b64encode(raw).decode()
    assert validate_args("upload_batch_part", {"batch_id": "b-1", "seq": 0, "data": text}) == expected
    assert validate_args("upload_batch_part", {"batch_id": "b-1", "seq": 3, "data": ""})["data"] == b""


@pytest.mark.parametrize("data", ["QQ", "QR==", "Q Q==", "QQ==\n", "QQ=", "-_8=", "é", 5, None, [1]])
def test_upload_batch_part_refuses_non_canonical_base64_and_other_types(data):
    refused("upload_batch_part", {"batch_id": "b-1", "seq": 0, "data": data}, "data")


@pytest.mark.parametrize("seq", [-1, 1.0, True, None])
def test_upload_batch_part_seq(seq):
    refused("upload_batch_part", {"batch_id": "b-1", "seq": seq, "data": b""}, "seq")


SUBMIT = {"batch_id": "b-1", "format": "csv", "control_count": 2, "control_sum": 300, "mode": "atomic"}


def test_submit_batch_from_uploaded_parts():
    assert validate_args("submit_batch", SUBMIT) == {**SUBMIT, "content": None, "items": None}


def test_submit_batch_content_is_normalized_to_bytes():
    text = "id,debit_account,credit_account,amount,currency,reference\n"
    out = validate_args("submit_batch", {**SUBMIT, "content": text})
    assert out["content"] == text.encode()
    assert validate_args("submit_batch", {**SUBMIT, "content": b"\xef"})["content"] == b"\xef"


def test_submit_batch_json_items_are_checked_for_shape_only():
    items = [{"id": "t-1", "amount": 1.5}, {"anything": ["goes", None]}]
    out = validate_args("submit_batch", {**SUBMIT, "format": "json", "items": items, "mode": "partial"})
    assert out["items"] == items and out["format"] == "json" and out["mode"] == "partial"
    assert msgpack.unpackb(msgpack.packb(out)) == out


@pytest.mark.parametrize("changes, word", [
    ({"format": "xml"}, "format"),
    ({"format": None}, "format"),
    ({"mode": "best_effort"}, "mode"),
    ({"mode": None}, "mode"),
    ({"control_count": -1}, "control_count"),
    ({"control_count": None}, "control_count"),
    ({"control_sum": 2**63}, "control_sum"),
    ({"control_sum": 1.5}, "control_sum"),
    ({"content": 5}, "content"),
    ({"content": "\ud800"}, "content"),
    ({"items": [{}]}, "items"),                                    # csv with items
    ({"format": "json", "items": [{}], "content": "[]"}, "content and items"),
    ({"format": "json", "items": [5]}, "items[0]"),
    ({"format": "json", "items": {"id": "t"}}, "items"),
    ({"batch_id": "b 1"}, "batch_id"),
    ({"priority": 1}, "priority"),
])
def test_submit_batch_refusals(changes, word):
    refused("submit_batch", {**SUBMIT, **changes}, word)


def test_submit_batch_item_limit():
    items = [{}] * 1_000_001
    refused("submit_batch", {**SUBMIT, "format": "json", "items": items}, "items")


def test_get_participant():
    assert validate_args("get_participant", {"id": "bank-a"}) == {"id": "bank-a"}
    refused("get_participant", {}, "id")
    refused("get_participant", {"id": "bank a"}, "id")
    refused("get_participant", {"id": "bank-a", "ids": ["bank-b"]}, "unknown field", "ids")


def test_get_batch_and_results():
    assert validate_args("get_batch", {"batch_id": "b-1"}) == {"batch_id": "b-1"}
    assert validate_args("get_batch_results", {"batch_id": "b-1"}) == {
        "batch_id": "b-1", "offset": 0, "limit": 1000}
    refused("get_batch_results", {"batch_id": "b-1", "limit": 8191}, "limit")
    refused("get_batch_results", {"batch_id": "b-1", "offset": -1}, "offset")
    refused("get_batch", {}, "batch_id")
