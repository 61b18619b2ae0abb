import msgpack
import pytest

from payswitch.protocol import ProtocolError, codes, normalize_transfer, validate_args

BASE = {"id": "t-1", "debit_account": "a-1", "credit_account": "a-2", "amount": 100}
DEFAULTS = {
    "currency": None, "reference": None, "pending": False, "timeout": 0,
    "post_pending_id": None, "void_pending_id": None, "linked": False,
}


def with_(**changes) -> dict:
    item = {**BASE, **changes}
    return {key: value for key, value in item.items() if value is not ...}


def refused(item, *words: str) -> str:
    with pytest.raises(ProtocolError) as info:
        normalize_transfer(item)
    assert info.value.code == codes.BAD_REQUEST
    for word in words:
        assert word in info.value.message
    return info.value.message


def test_minimal_transfer_gets_every_field_with_defaults():
    assert normalize_transfer(BASE) == {**BASE, **DEFAULTS}


def test_every_key_is_present_in_contract_order():
    assert list(normalize_transfer(BASE)) == [
        "id", "debit_account", "credit_account", "amount", "currency", "reference", "pending",
        "timeout", "post_pending_id", "void_pending_id", "linked"]


def test_full_pending_transfer_is_kept_as_given():
    item = with_(currency="EUR", reference="inv 7", pending=True, timeout=2**32 - 1, linked=True)
    assert normalize_transfer(item) == {**DEFAULTS, **item}


def test_nulls_mean_defaults():
    item = with_(currency=None, reference=None, pending=None, timeout=None, linked=None,
                 post_pending_id=None, void_pending_id=None)
    assert normalize_transfer(item) == {**BASE, **DEFAULTS}


def test_result_is_a_new_plain_dict_that_msgpack_round_trips():
    item = with_(reference="x")
    out = normalize_transfer(item)
    assert out is not item
    assert msgpack.unpackb(msgpack.packb(out)) == out


@pytest.mark.parametrize("amount", [1.0, 100.5, True, False, "100", 0, -1, 2**63, 2**64 - 1, [], {}, b"1"])
def test_invalid_amounts_normalize_to_zero(amount):
    assert normalize_transfer(with_(amount=amount))["amount"] == 0


@pytest.mark.parametrize("amount", [1, 2**63 - 1])
def test_amount_limits(amount):
    assert normalize_transfer(with_(amount=amount))["amount"] == amount


@pytest.mark.parametrize("amount", [..., None])
def test_amount_required_on_a_plain_transfer(amount):
    refused(with_(amount=amount), "amount")


@pytest.mark.parametrize("field", ["id", "debit_account", "credit_account"])
@pytest.mark.parametrize("value", [..., None, "", "x" * 65, "a b", "é", 5, b"a-1"])
def test_required_ids(field, value):
    refused(with_(**{field: value}), field)


def test_ids_accept_the_whole_alphabet_and_64_chars():
    item = with_(id="AZaz09._:-", debit_account="x" * 64)
    assert normalize_transfer(item)["id"] == "AZaz09._:-"


@pytest.mark.parametrize("currency", ["usd", "US", "USDX", "U$D", "ÜSD", 840, b"USD"])
def test_bad_currency(currency):
    refused(with_(currency=currency), "currency")


@pytest.mark.parametrize("reference", [5, b"ref", ["r"], "x" * 257])
def test_bad_reference(reference):
    refused(with_(reference=reference), "reference")


def test_reference_limits():
    assert normalize_transfer(with_(reference=""))["reference"] == ""
    assert normalize_transfer(with_(reference="é" * 256))["reference"] == "é" * 256


@pytest.mark.parametrize("field", ["pending", "linked"])
@pytest.mark.parametrize("value", [1, 0, "true", []])
def test_flags_must_be_booleans(field, value):
    refused(with_(**{field: value}), field)


@pytest.mark.parametrize("timeout", [-1, 2**32, 1.5, True, "5"])
def test_bad_timeout(timeout):
    refused(with_(pending=True, timeout=timeout), "timeout")


def test_timeout_needs_pending_but_zero_is_the_default_anywhere():
    refused(with_(timeout=5), "timeout", "pending")
    refused(with_(pending=False, timeout=5), "timeout")
    assert normalize_transfer(with_(timeout=0))["timeout"] == 0


def test_post_may_omit_accounts_amount_and_currency():
    out = normalize_transfer({"id": "p-1", "post_pending_id": "t-1"})
    assert out == {**DEFAULTS, "id": "p-1", "debit_account": None, "credit_account": None,
                   "amount": None, "post_pending_id": "t-1"}


def test_void_keeps_given_fields_for_the_ledger_to_compare():
    out = normalize_transfer(with_(void_pending_id="t-0", amount=5.5))
    assert out["void_pending_id"] == "t-0" and out["amount"] == 0 and out["debit_account"] == "a-1"


def test_post_and_void_together_is_refused():
    refused({"id": "x", "post_pending_id": "a", "void_pending_id": "b"}, "post_pending_id", "void_pending_id")


@pytest.mark.parametrize("field", ["post_pending_id", "void_pending_id"])
def test_pending_with_post_or_void_is_refused(field):
    refused({"id": "x", field: "a", "pending": True}, "pending")


@pytest.mark.parametrize("field", ["post_pending_id", "void_pending_id"])
def test_bad_pending_ids(field):
    refused({"id": "x", field: "no spaces"}, field)


def test_unknown_field_is_refused():
    refused(with_(ammount=5), "unknown field", "ammount")


def test_not_a_map():
    refused(["t-1"], "map")


def test_transfer_op_args_are_the_item():
    assert validate_args("transfer", BASE) == {**BASE, **DEFAULTS}


def test_create_transfers_normalizes_each_item():
    items = [BASE, with_(id="t-2", amount=1.5, linked=True)]
    out = validate_args("create_transfers", {"transfers": items})["transfers"]
    assert out == [{**BASE, **DEFAULTS}, {**BASE, **DEFAULTS, "id": "t-2", "amount": 0, "linked": True,
                                           "amount_sent": "1.5"}]


def test_create_transfers_names_the_failing_item():
    with pytest.raises(ProtocolError) as info:
        validate_args("create_transfers", {"transfers": [BASE, with_(currency="usd")]})
    assert info.value.code == codes.BAD_REQUEST
    assert info.value.message.startswith("transfers[1]: currency")


@pytest.mark.parametrize("transfers", [[], [BASE] * 8191, None, BASE, "x"])
def test_create_transfers_list_bounds(transfers):
    with pytest.raises(ProtocolError) as info:
        validate_args("create_transfers", {"transfers": transfers})
    assert "transfers" in info.value.message


def test_create_transfers_accepts_8190_items():
    assert len(validate_args("create_transfers", {"transfers": [BASE] * 8190})["transfers"]) == 8190


def test_create_transfers_item_must_be_a_map():
    with pytest.raises(ProtocolError) as info:
        validate_args("create_transfers", {"transfers": [BASE, 5]})
    assert info.value.message == "transfers[1] must be a map"
