"""Currencies are checked against ISO 4217 (plus the operator's --extra-currencies) the same way
for accounts, transfers, caps and every batch format, at admission only: a log written with an
extra code replays after the setting is gone. Over real sockets and processes."""
import json

import pytest

from batches.batch_e2e_support import Session, csv_file
from batches.batch_formats_support import Block, Tx, pain001
from support.switch_process import SwitchProcess, run_switch_once
from support.wire import WireClient
from support.world import create_world

UNKNOWN_WITH_XTS = ("is not an active ISO 4217 currency code, nor one of the extra currencies "
                    "allowed here (XTS)")
UNKNOWN_WITHOUT_EXTRAS = ("is not an active ISO 4217 currency code, and no extra currencies are "
                          "allowed here")


@pytest.fixture
def switch(tmp_path):
    process = SwitchProcess(tmp_path / "data", extra_args=("--extra-currencies", "XTS")).start()
    try:
        with WireClient(process.host, process.port) as admin:
            admin.hello("admin", process.admin_token)
            process.tokens = create_world(admin)
            created = admin.call("create_accounts", {"accounts": [
                {"id": "x-a", "participant": "bank-a", "currency": "XTS", "overdraft_limit": None},
                {"id": "x-b", "participant": "bank-b", "currency": "XTS"}]})
            assert [r["status"] for r in created["results"]] == ["created", "created"]
        yield process
    finally:
        process.stop()


def refused(client: WireClient, op: str, args: dict) -> str:
    reply = client.request(op, args)
    assert reply["ok"] is False and reply["error"]["code"] == "bad_request", reply
    return reply["error"]["message"]


def transfer(tid: str, currency: str | None, debit="x-a", credit="x-b", amount=5) -> dict:
    item = {"id": tid, "debit_account": debit, "credit_account": credit, "amount": amount}
    return item if currency is None else {**item, "currency": currency}


def test_accounts_transfers_and_caps_refuse_an_unknown_code_naming_it(switch):
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        assert refused(admin, "create_accounts", {"accounts": [
            {"id": "n-1", "participant": "bank-a", "currency": "XXX"}]}) == \
            f"accounts[0]: currency 'XXX' {UNKNOWN_WITH_XTS}"
        assert refused(admin, "transfer", transfer("t-abc", "ABC")) == \
            f"currency 'ABC' {UNKNOWN_WITH_XTS}"
        assert refused(admin, "create_transfers", {"transfers": [
            transfer("t-1", "XTS"), transfer("t-2", "QQQ")]}) == \
            f"transfers[1]: currency 'QQQ' {UNKNOWN_WITH_XTS}"
        assert refused(admin, "set_participant", {"id": "bank-a", "net_debit_cap": {"ZZZ": 1}}) \
            == f"net_debit_cap key 'ZZZ' {UNKNOWN_WITH_XTS}"
        assert refused(admin, "create_participants", {"participants": [
            {"id": "bank-c", "name": "C", "net_debit_cap": {"usd": 1}}]}) == \
            "participants[0]: net_debit_cap key 'usd' must be a currency code of 3 uppercase letters"
        # Nothing of the refused requests happened; the extra code works like any other.
        assert admin.call("lookup_accounts", {"ids": ["n-1"]})["accounts"] == []
        assert admin.call("lookup_transfers", {"ids": ["t-abc", "t-1", "t-2"]})["transfers"] == []
        assert admin.call("transfer", transfer("t-xts", "XTS"))["status"] == "created"


def test_a_large_frame_is_checked_the_same_way_by_the_decode_worker(switch):
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        items = [transfer(f"big-{n:04d}", "XTS", amount=1) for n in range(300)]
        frames = admin.call("stats")["decode_worker"]["frames"]
        bad = items[:299] + [transfer("big-bad", "ABC")]
        assert len(json.dumps(bad)) > 16 << 10
        assert refused(admin, "create_transfers", {"transfers": bad}) == \
            f"transfers[299]: currency 'ABC' {UNKNOWN_WITH_XTS}"
        result = admin.call("create_transfers", {"transfers": items})
        assert {r["status"] for r in result["results"]} == {"created"}
        assert admin.call("stats")["decode_worker"]["frames"] == frames + 2


def test_every_batch_format_refuses_an_unknown_code_naming_it(switch):
    with Session(switch, "bank-a", switch.tokens["bank-a"]) as bank:
        rows = [("c-1", "x-a", "x-b", 5, "XTS", None), ("c-2", "x-a", "x-b", 5, "ABC", None)]
        assert bank.submit("CSV-1", "csv", content=csv_file(rows), count=2, total=10)["ok"]
        assert bank.wait("CSV-1")["state"] == "rejected"
        # The refused row is not counted, so the control totals disagree too.
        assert bank.get("CSV-1")["problems"][0] == \
            {"where": "line 3", "reason": f"currency 'ABC' {UNKNOWN_WITH_XTS}"}

        items = [transfer("j-1", "XTS"), transfer("j-2", "ABC")]
        assert bank.submit("JSON-1", "json", items=items, count=2, total=10)["ok"]
        assert bank.wait("JSON-1")["state"] == "rejected"
        assert bank.get("JSON-1")["problems"][0] == \
            {"where": "item 1", "reason": f"currency 'ABC' {UNKNOWN_WITH_XTS}"}

        document = pain001([Block("P1", [Tx("p-1", "1.00", "EUR"), Tx("p-2", "1.00", "ABC"),
                                         Tx("p-3", "1.00", "XTS")])], ctrl_sum="3.00")
        assert bank.submit("PAIN-1", "pain.001", content=document, count=3, total=300)["ok"]
        assert bank.wait("PAIN-1")["state"] == "rejected"
        problems = {p["where"]: p["reason"] for p in bank.get("PAIN-1")["problems"]}
        assert problems["PmtInf P1 CdtTrfTxInf 2"] == f"Ccy 'ABC' {UNKNOWN_WITH_XTS}"
        assert problems["PmtInf P1 CdtTrfTxInf 3"].startswith(
            "Ccy 'XTS' is allowed here but has no ISO 4217 minor units")

        good = [("g-1", "x-a", "x-b", 5, "XTS", None), ("g-2", "x-a", "x-b", 7, None, None)]
        assert bank.submit("CSV-2", "csv", content=csv_file(good), count=2, total=12)["ok"]
        summary = bank.wait("CSV-2")
        assert (summary["state"], summary["created"]) == ("completed", 2)


def test_what_an_extra_code_wrote_replays_after_the_operator_drops_it(switch):
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        assert admin.call("transfer", transfer("r-1", "XTS", amount=40))["status"] == "created"
        before = admin.call("lookup_accounts", {"ids": ["x-a", "x-b"]})["accounts"]
    switch.extra_args = ()
    switch.restart()
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        assert admin.call("lookup_accounts", {"ids": ["x-a", "x-b"]})["accounts"] == before
        assert [t["currency"] for t in admin.call(
            "lookup_transfers", {"ids": ["r-1"]})["transfers"]] == ["XTS"]
        # Already-known accounts keep working; new requests naming the code are refused.
        assert admin.call("transfer", transfer("r-2", None, amount=1))["status"] == "created"
        assert refused(admin, "transfer", transfer("r-3", "XTS")) == \
            f"currency 'XTS' {UNKNOWN_WITHOUT_EXTRAS}"


def test_a_malformed_extra_currency_is_a_configuration_error(tmp_path):
    code, output = run_switch_once(tmp_path / "data", "--extra-currencies", "XTS,xx1")
    assert code == 2
    assert "extra_currencies: 'xx1' must be a currency code of 3 uppercase letters" in output
    assert not (tmp_path / "data").exists()


def test_a_batch_in_an_extra_code_resumes_after_a_crash_without_the_setting(switch):
    """kill -9 in the middle of a partial batch of XTS items, restart without
    --extra-currencies: the batch, accepted before, is read again as accepted and finishes."""
    rows = [(f"k{n}", "x-a", "x-b", 1, "XTS", None) for n in range(100_000)]
    with Session(switch, "bank-a", switch.tokens["bank-a"], "msgpack") as bank:
        bank.upload("xts-big", csv_file(rows), 1_000_000)
        assert bank.submit("xts-big", "csv", count=len(rows), total=len(rows))["ok"]
        while (progress := bank.get("xts-big"))["processed"] < 1000:
            assert progress["state"] in ("received", "processing"), progress
    switch.kill()
    assert progress["state"] == "processing" and progress["processed"] < len(rows), progress
    switch.extra_args = ()
    switch.start()
    with Session(switch, "bank-a", switch.tokens["bank-a"], "msgpack") as bank:
        summary = bank.wait("xts-big", timeout_s=120)
        assert (summary["state"], summary["created"], summary["failed"], summary["problems"]) \
            == ("completed", len(rows), 0, [])
    with Session(switch, "admin", switch.admin_token) as admin:
        assert admin.balances(["x-a", "x-b"]) == {"x-a": -len(rows), "x-b": len(rows)}
