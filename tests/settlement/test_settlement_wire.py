"""Clearing and settlement over real TCP: cap refusals and raised caps, suspension and resume,
the bilateral matrix, and close_window with settlement postings."""
from settlement.settlement_support import (
    HUB_ACCOUNTS, all_transfers, as_computed, check_report_shape, create_settlement_world,
    fail, independent_reports, ok, traffic_accounts, tx,
)
from support.wire import WireClient


def session(switch, participant, token):
    client = WireClient(switch.host, switch.port)
    client.hello(participant, token)
    return client


def balances(client, ids):
    return {a["id"]: a["balance"]
            for a in ok(client, "lookup_accounts", {"ids": list(ids)})["accounts"]}


def test_cap_refusal_changes_nothing_then_a_raised_cap_lets_it_through(switch, admin):
    tokens = create_settlement_world(admin, caps={"bank-a": {"USD": 1000}})
    with session(switch, "bank-a", tokens["bank-a"]) as bank_a:
        assert ok(bank_a, "transfer", tx("c-1", "bank-a-1", "bank-b-1", 700))["status"] == \
            "created"
        assert ok(bank_a, "transfer", tx("c-2", "bank-a-1", "bank-c-1", 300, pending=True,
                                         timeout=60))["status"] == "created"
        window_before = ok(admin, "get_window", {"window_id": 1})
        matrix_before = ok(admin, "get_window_matrix", {"window_id": 1})
        money_before = balances(admin, traffic_accounts())
        # 700 moved + 300 reserved: one more cent passes the cap, in every form
        assert fail(bank_a, "transfer", tx("c-3", "bank-a-1", "bank-b-1", 1)) == \
            "net_debit_cap_exceeded"
        result = ok(bank_a, "create_transfers", {"transfers": [
            tx("c-4", "bank-a-1", "bank-a-2", 5, linked=True),  # on-us: never capped
            tx("c-3", "bank-a-1", "bank-d-1", 1)]})
        assert [r["status"] for r in result["results"]] == \
            ["linked_event_failed", "net_debit_cap_exceeded"]
        assert fail(bank_a, "transfer", tx("c-5", "bank-a-1", "bank-b-1", 1, pending=True)) \
            == "net_debit_cap_exceeded"
        # ... and changes nothing
        assert ok(admin, "get_window", {"window_id": 1}) == window_before
        assert ok(admin, "get_window_matrix", {"window_id": 1}) == matrix_before
        assert balances(admin, traffic_accounts()) == money_before
        assert ok(admin, "lookup_transfers", {"ids": ["c-3", "c-4", "c-5"]}) == \
            {"transfers": []}
        # on-us transfers pass, credits received lower the position
        assert ok(bank_a, "transfer", tx("c-6", "bank-a-1", "bank-a-2", 5000))["status"] == \
            "created"
        # the operator raises the cap: the same transfer id now goes through
        record = ok(admin, "set_participant", {"id": "bank-a", "net_debit_cap": {"USD": 1500}})
        assert record["net_debit_cap"] == {"USD": 1500}
        assert ok(bank_a, "transfer", tx("c-3", "bank-a-1", "bank-b-1", 500))["status"] == \
            "created"
        assert fail(bank_a, "transfer", tx("c-7", "bank-a-1", "bank-b-1", 1)) == \
            "net_debit_cap_exceeded"
        # voiding the reservation releases 300 of headroom
        ok(bank_a, "transfer", {"id": "c-8", "void_pending_id": "c-2"})
        assert ok(bank_a, "transfer", tx("c-7", "bank-a-1", "bank-b-1", 300))["status"] == \
            "created"
        # a cap is per currency: EUR is not capped
        assert ok(bank_a, "transfer", tx("c-9", "bank-a-eur", "bank-b-eur", 10**6))["status"] \
            == "created"
    report = ok(admin, "close_window", {})
    check_report_shape(report)
    a_usd = [p for p in report["positions"] if p["participant"] == "bank-a"
             and p["currency"] == "USD"]
    assert a_usd == [{"participant": "bank-a", "currency": "USD", "debits": 1500, "credits": 0,
                      "net": -1500}]


def test_suspension_refuses_its_transfers_until_resumed(switch, admin):
    tokens = create_settlement_world(admin)
    with session(switch, "bank-b", tokens["bank-b"]) as bank_b:
        assert ok(bank_b, "transfer", tx("s-0", "bank-b-1", "bank-a-1", 100))["status"] == \
            "created"
        ok(bank_b, "transfer", tx("s-h", "bank-b-1", "bank-c-1", 40, pending=True))
        record = ok(admin, "set_participant", {"id": "bank-b", "suspended": True})
        assert record["suspended"] is True
        before = balances(admin, traffic_accounts())
        # its own transfers, interbank and on-us, and transfers to it are refused
        assert fail(bank_b, "transfer", tx("s-1", "bank-b-1", "bank-a-1", 5)) == \
            "participant_suspended"
        assert fail(bank_b, "transfer", tx("s-2", "bank-b-1", "bank-b-2", 5)) == \
            "participant_suspended"
        assert fail(admin, "transfer", tx("s-3", "bank-a-1", "bank-b-1", 5)) == \
            "participant_suspended"
        assert balances(admin, traffic_accounts()) == before
        # other participants carry on
        assert ok(admin, "transfer", tx("s-4", "bank-a-1", "bank-c-1", 7))["status"] == \
            "created"
        # the window closes and settles a suspended participant's obligations too
        report = ok(admin, "close_window", {"settle": {"hub_accounts": HUB_ACCOUNTS}})
        check_report_shape(report)
        assert "settle:1:bank-b:USD" in report["settlement_transfers"]
        # reads still work while suspended
        seen = ok(bank_b, "get_window", {"window_id": 1})
        assert seen["positions"] == [{"participant": "bank-b", "currency": "USD",
                                      "debits": 100, "credits": 0, "net": -100}]
        assert seen["settlement_transfers"] == ["settle:1:bank-b:USD"]
        assert balances(bank_b, ["bank-b-settle"]) == {"bank-b-settle": -100}
        ok(admin, "set_participant", {"id": "bank-b", "suspended": False})
        assert ok(bank_b, "transfer", tx("s-1", "bank-b-1", "bank-a-1", 5))["status"] == \
            "created"
        ok(bank_b, "transfer", {"id": "s-p", "post_pending_id": "s-h"})
    report = ok(admin, "close_window", {})
    assert {(p["participant"], p["net"]) for p in report["positions"]} == \
        {("bank-b", -45), ("bank-a", 5), ("bank-c", 40)}


def test_matrix_over_the_wire_and_who_sees_what(switch, admin):
    tokens = create_settlement_world(admin)
    ok(admin, "create_transfers", {"transfers": [
        tx("m-1", "bank-a-1", "bank-b-1", 100), tx("m-2", "bank-a-2", "bank-b-1", 20),
        tx("m-3", "bank-b-1", "bank-c-1", 30), tx("m-4", "bank-c-eur", "bank-a-eur", 9),
        tx("m-5", "bank-a-1", "bank-a-2", 1000)]})  # on-us: not in the matrix
    expected = [
        {"payer": "bank-a", "payee": "bank-b", "currency": "USD", "amount": 120},
        {"payer": "bank-b", "payee": "bank-c", "currency": "USD", "amount": 30},
        {"payer": "bank-c", "payee": "bank-a", "currency": "EUR", "amount": 9}]
    assert ok(admin, "get_window_matrix", {"window_id": 1}) == \
        {"window_id": 1, "state": "open", "rows": expected}
    with session(switch, "bank-c", tokens["bank-c"]) as bank_c:
        assert ok(bank_c, "get_window_matrix", {"window_id": 1})["rows"] == expected[1:]
    ok(admin, "close_window", {})
    assert ok(admin, "get_window_matrix", {"window_id": 1}) == \
        {"window_id": 1, "state": "closed", "rows": expected}
    with session(switch, "bank-d", tokens["bank-d"]) as bank_d:
        assert ok(bank_d, "get_window_matrix", {"window_id": 1})["rows"] == []
        assert fail(bank_d, "get_window_matrix", {"window_id": 3}) == "window_not_found"
    assert fail(admin, "get_window_matrix", {"window_id": 0}) == "bad_request"
    assert fail(admin, "get_window_matrix", {}) == "bad_request"
    assert fail(admin, "get_window_matrix", {"window_id": 1, "x": 1}) == "bad_request"


def test_close_with_settlement_postings_over_the_wire(switch, admin):
    create_settlement_world(admin)
    ok(admin, "create_transfers", {"transfers": [
        tx("p-1", "bank-a-1", "bank-b-1", 500), tx("p-2", "bank-b-1", "bank-c-2", 120),
        tx("p-3", "bank-d-eur", "bank-a-eur", 77)]})
    # refusals change nothing and leave the window open
    before = ok(admin, "get_window", {"window_id": 1})
    assert fail(admin, "close_window", {"settle": {"hub_accounts": {"USD": "hub-usd"}}}) == \
        "account_not_found"  # EUR has instructions but no hub account
    assert fail(admin, "close_window", {"settle": {"hub_accounts": {
        "USD": "hub-eur", "EUR": "hub-eur"}}}) == "currency_mismatch"
    assert fail(admin, "close_window", {"settle": {"hub_accounts": {}}}) == "bad_request"
    assert fail(admin, "close_window", {"settle": {"hub_accounts": {"USD": 5}}}) == \
        "bad_request"
    assert fail(admin, "close_window", {"settle": True}) == "bad_request"
    assert ok(admin, "get_window", {"window_id": 1}) == before
    report = ok(admin, "close_window", {"settle": {"hub_accounts": HUB_ACCOUNTS}})
    check_report_shape(report)
    assert report["settlement_transfers"] == [
        "settle:1:bank-a:EUR", "settle:1:bank-a:USD", "settle:1:bank-b:USD",
        "settle:1:bank-c:USD", "settle:1:bank-d:EUR"]
    postings = {t["id"]: (t["debit_account"], t["credit_account"], t["amount"])
                for t in ok(admin, "lookup_transfers",
                            {"ids": report["settlement_transfers"]})["transfers"]}
    assert postings == {
        "settle:1:bank-a:EUR": ("hub-eur", "bank-a-settle-eur", 77),
        "settle:1:bank-a:USD": ("bank-a-settle", "hub-usd", 500),
        "settle:1:bank-b:USD": ("hub-usd", "bank-b-settle", 380),
        "settle:1:bank-c:USD": ("hub-usd", "bank-c-settle", 120),
        "settle:1:bank-d:EUR": ("bank-d-settle-eur", "hub-eur", 77)}
    assert balances(admin, HUB_ACCOUNTS.values()) == {"hub-usd": 0, "hub-eur": 0}
    # postings are exempt from positions: window 2 is empty
    assert ok(admin, "get_window", {"window_id": 2})["positions"] == []
    # the independent computation agrees, postings excluded
    windows = ok(admin, "list_windows")["windows"]
    computed = independent_reports(all_transfers(admin, traffic_accounts()), windows)
    assert computed[1] == as_computed(report, ok(admin, "get_window_matrix", {"window_id": 1}))
