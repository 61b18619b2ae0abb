"""Argument shapes of the settlement additions: close_window {settle}, set_participant
{settlement_accounts}, get_window_matrix."""
import pytest

from payswitch.protocol import OPS, ProtocolError, codes, validate_args


def refused(op, args, *words):
    with pytest.raises(ProtocolError) as info:
        validate_args(op, args)
    assert info.value.code == codes.BAD_REQUEST
    for word in words:
        assert word in info.value.message, info.value.message


def test_get_window_matrix_is_a_read():
    assert OPS["get_window_matrix"].mutating is False
    assert validate_args("get_window_matrix", {"window_id": 7}) == {"window_id": 7}
    refused("get_window_matrix", {}, "window_id")
    refused("get_window_matrix", {"window_id": 0}, "window_id")
    refused("get_window_matrix", {"window_id": "1"}, "window_id")
    refused("get_window_matrix", {"window_id": 1, "rows": []}, "unknown field", "rows")


def test_close_window_without_settle_normalizes_to_no_args():
    # unchanged from before the addition, so earlier WAL records replay the same
    assert validate_args("close_window", {}) == {}
    assert validate_args("close_window", {"settle": None}) == {}


def test_close_window_settle():
    args = {"settle": {"hub_accounts": {"USD": "hub-usd", "EUR": "hub:eur.1"}}}
    assert validate_args("close_window", args) == args


@pytest.mark.parametrize("settle, words", [
    (True, ["settle", "map"]),
    ([], ["settle", "map"]),
    ({}, ["hub_accounts", "map"]),
    ({"hub_accounts": None}, ["hub_accounts", "map"]),
    ({"hub_accounts": {}}, ["hub_accounts", "at least one"]),
    ({"hub_accounts": {"usd": "h"}}, ["hub_accounts", "'usd'"]),
    ({"hub_accounts": {"USD": None}}, ["hub_accounts.USD", "account id"]),
    ({"hub_accounts": {"USD": "a b"}}, ["hub_accounts.USD"]),
    ({"hub_accounts": {"USD": "x" * 65}}, ["hub_accounts.USD"]),
    ({"hub_accounts": {"USD": "h"}, "mode": "x"}, ["unknown field", "mode"]),
])
def test_close_window_settle_refusals(settle, words):
    refused("close_window", {"settle": settle}, *words)


def test_close_window_unknown_field():
    refused("close_window", {"setle": {}}, "unknown field", "setle")


def test_set_participant_settlement_accounts():
    assert validate_args("set_participant", {"id": "b"}) == {
        "id": "b", "net_debit_cap": None, "suspended": None}  # as before the addition
    args = {"id": "b", "settlement_accounts": {"USD": "b-s", "EUR": None}}
    assert validate_args("set_participant", args) == {
        "id": "b", "net_debit_cap": None, "suspended": None,
        "settlement_accounts": {"USD": "b-s", "EUR": None}}
    assert validate_args("set_participant", {"id": "b", "settlement_accounts": None}) == {
        "id": "b", "net_debit_cap": None, "suspended": None}
    refused("set_participant", {"id": "b", "settlement_accounts": ["b-s"]},
            "settlement_accounts", "map")
    refused("set_participant", {"id": "b", "settlement_accounts": {"US": "b-s"}},
            "settlement_accounts", "'US'")
    refused("set_participant", {"id": "b", "settlement_accounts": {"USD": 5}},
            "settlement_accounts.USD")
