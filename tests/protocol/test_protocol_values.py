import pytest

from payswitch.protocol import (
    MSGPACK, JSON, ProtocolError, codes, decode_body, encode_body, is_money, is_valid_currency,
    is_valid_id, parse_envelope, validate_args,
)

CONTRACT_CODES = """
bad_frame frame_too_large bad_request unknown_op unauthenticated overloaded shutting_down internal
not_primary unavailable
created exists forbidden exists_with_different_fields participant_not_found participant_exists
participant_suspended account_not_found account_exists currency_mismatch same_account
invalid_amount insufficient_funds net_debit_cap_exceeded pending_not_found pending_already_posted
pending_already_voided pending_expired exceeds_pending_amount linked_event_failed
linked_event_chain_open batch_not_found window_not_found
""".split()


@pytest.mark.parametrize("code", CONTRACT_CODES)
def test_every_contract_code_has_a_constant(code):
    assert getattr(codes, code.upper()) == code
    assert code in codes.ALL


def test_code_groups_are_disjoint_and_complete():
    assert not codes.ENVELOPE & codes.ITEM and not codes.SUCCESS & (codes.ENVELOPE | codes.ITEM)
    assert codes.ALL == set(CONTRACT_CODES)


def test_protocol_error_carries_code_message_and_id():
    error = ProtocolError(codes.BAD_REQUEST, "op must be a string", 7)
    assert (error.code, error.message, error.request_id) == ("bad_request", "op must be a string", 7)
    assert ProtocolError("bad_frame", "x").request_id is None


@pytest.mark.parametrize("value, valid", [
    ("a", True), ("x" * 64, True), ("AZaz09._:-", True),
    ("", False), ("x" * 65, False), ("a b", False), ("a/b", False), ("é", False), ("a\n", False),
    (5, False), (None, False), (b"a", False),
])
def test_is_valid_id(value, valid):
    assert is_valid_id(value) is valid


@pytest.mark.parametrize("value, valid", [
    ("USD", True), ("XAU", True),
    ("usd", False), ("Usd", False), ("US", False), ("USDD", False), ("US1", False), ("ÄBC", False),
    (840, False), (b"USD", False), (None, False),
])
def test_is_valid_currency(value, valid):
    assert is_valid_currency(value) is valid


@pytest.mark.parametrize("value, valid", [
    (0, True), (2**63 - 1, True), (-1, False), (2**63, False), (True, False), (1.0, False), ("1", False),
])
def test_is_money(value, valid):
    assert is_money(value) is valid


@pytest.mark.parametrize("codec", [JSON, MSGPACK])
def test_upload_part_end_to_end_in_both_codecs(codec):
    raw = bytes(range(256))
    body = encode_body({"id": 1, "op": "upload_batch_part",
                        "args": {"batch_id": "b-1", "seq": 0, "data": raw}}, codec)
    obj, used = decode_body(body)
    _, op, args = parse_envelope(obj)
    assert used == codec
    assert validate_args(op, args)["data"] == raw
