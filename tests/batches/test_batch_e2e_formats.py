"""Batches end to end over TCP against a real switch: each format in both codecs, balances
checked to the unit, the pain.001 mapping and its exact minor units."""
import json

import pytest

from batches.batch_e2e_support import (
    ACCOUNTS, IBAN_ACCOUNTS, IBAN_BHD_CREDITOR, IBAN_BHD_DEBTOR, IBAN_CREDITOR, IBAN_CREDITOR_2,
    IBAN_DEBTOR, IBAN_FUNDS, IBAN_JPY_CREDITOR, IBAN_JPY_DEBTOR, Session, create_iban_accounts,
    csv_file,
)
from batches.batch_formats_support import Block, Tx, pain001
from support.world import FUNDS


def sessions(world, codec):
    switch, tokens = world
    return (Session(switch, "admin", tokens["admin"], codec),
            Session(switch, "bank-a", tokens["bank-a"], codec))


def test_csv_batch_end_to_end(world, codec):
    admin, bank_a = sessions(world, codec)
    content = (b"id,debit_account,credit_account,amount,currency,reference\r\n"
               b'c1,a-1,b-1,1000,USD,"invoice 1, part ""A"""\r\n'
               b"c2,a-1,b-1,2500,,\r\n"
               b"c3,a-1,a-2,700,USD,rent\r\n")
    submitted = bank_a.submit("csv-1", "csv", content=content, count=3, total=4200)
    assert submitted == {"id": submitted["id"], "ok": True,
                         "result": {"batch_id": "csv-1", "state": "received"}}
    summary = bank_a.wait("csv-1")
    assert summary == {"batch_id": "csv-1", "format": "csv", "state": "completed", "total": 3,
                       "created": 3,
                       "failed": 0, "processed": 3, "control": {"count": 3, "sum": 4200},
                       "problems": []}
    assert bank_a.results("csv-1") == [{"index": 0, "id": "c1", "status": "created"},
                                       {"index": 1, "id": "c2", "status": "created"},
                                       {"index": 2, "id": "c3", "status": "created"}]
    assert admin.balances(["a-1", "a-2", "b-1"]) == {"a-1": FUNDS - 4200, "a-2": 700, "b-1": 3500}
    stored = {t["id"]: t for t in admin.ok("lookup_transfers", {"ids": ["c1", "c2", "c3"]})
              ["transfers"]}
    assert stored["c1"]["reference"] == 'invoice 1, part "A"'
    assert (stored["c2"]["amount"], stored["c2"]["currency"], stored["c2"]["reference"]) == \
        (2500, "USD", None)
    assert (stored["c3"]["debit_account"], stored["c3"]["credit_account"]) == ("a-1", "a-2")


def test_json_items_and_json_content_end_to_end(world, codec):
    admin, bank_a = sessions(world, codec)
    items = [{"id": "j1", "debit_account": "a-1", "credit_account": "b-1", "amount": 300},
             {"id": "j2", "debit_account": "a-1", "credit_account": "b-1", "amount": 200,
              "currency": "USD", "reference": "second"}]
    assert bank_a.submit("json-items", "json", items=items, count=2, total=500)["ok"]
    assert bank_a.wait("json-items")["created"] == 2
    # The same format as a JSON document, uploaded in parts rather than sent as items.
    document = json.dumps([{"id": f"jc{n}", "debit_account": "a-1", "credit_account": "a-2",
                            "amount": 10 + n} for n in range(40)]).encode()
    assert bank_a.upload("json-content", document, part_bytes=500) > 1
    assert bank_a.submit("json-content", "json", count=40, total=sum(10 + n for n in range(40)))
    summary = bank_a.wait("json-content")
    assert (summary["state"], summary["total"], summary["created"]) == ("completed", 40, 40)
    assert [r["id"] for r in bank_a.results("json-content")] == [f"jc{n}" for n in range(40)]
    moved = sum(10 + n for n in range(40))
    assert admin.balances(["a-1", "a-2", "b-1"]) == \
        {"a-1": FUNDS - 500 - moved, "a-2": moved, "b-1": 500}
    stored = admin.ok("lookup_transfers", {"ids": ["j2"]})["transfers"][0]
    assert (stored["amount"], stored["reference"]) == (200, "second")


def pain_document(version: str) -> bytes:
    """Three PmtInf blocks in EUR (2 decimals), JPY (0) and BHD (3), one NOTPROVIDED id."""
    return pain001([
        Block("P-EUR", [Tx("E2E-1", "1234.56", creditor=IBAN_CREDITOR,
                           ustrd=["Invoice 1", "line 2"]),
                        Tx("E2E-2", "0.1", creditor=IBAN_CREDITOR_2),
                        Tx("NOTPROVIDED", "99.99", creditor=IBAN_CREDITOR)],
              debtor=IBAN_DEBTOR, ctrl_sum="1334.65"),
        Block("P-JPY", [Tx("JPY-1", "1500", ccy="JPY", creditor=IBAN_JPY_CREDITOR)],
              debtor=IBAN_JPY_DEBTOR, ctrl_sum="1500"),
        Block("P-BHD", [Tx("BHD-1", "12.345", ccy="BHD", creditor=IBAN_BHD_CREDITOR)],
              debtor=IBAN_BHD_DEBTOR),
    ], version=version, msg_id=f"MSG-{version}", ctrl_sum="2846.995")


@pytest.mark.parametrize("version, uploaded", [("03", False), ("09", True)])
def test_pain001_batch_end_to_end(world, codec, version, uploaded):
    admin, bank_a = sessions(world, codec)
    create_iban_accounts(admin)
    document = pain_document(version)
    # Minor units, exactly: 1234.56 EUR, 0.1 EUR, 99.99 EUR, 1500 JPY, 12.345 BHD.
    amounts = {"E2E-1": 123456, "E2E-2": 10, f"MSG-{version}:P-EUR:3": 9999, "JPY-1": 1500,
               "BHD-1": 12345}
    if uploaded:
        assert bank_a.upload("pain", document, part_bytes=700) > 3  # cut inside tags
        reply = bank_a.submit("pain", "pain.001", count=5, total=sum(amounts.values()))
    else:
        reply = bank_a.submit("pain", "pain.001", content=document, count=5,
                              total=sum(amounts.values()))
    assert reply["ok"], reply
    summary = bank_a.wait("pain")
    assert summary["problems"] == [] and summary["state"] == "completed", summary
    assert (summary["total"], summary["created"], summary["failed"]) == (5, 5, 0)
    assert [(r["id"], r["status"]) for r in bank_a.results("pain")] == \
        [(transfer_id, "created") for transfer_id in amounts]
    stored = {t["id"]: t for t in admin.ok("lookup_transfers", {"ids": list(amounts)})
              ["transfers"]}
    assert {i: t["amount"] for i, t in stored.items()} == amounts
    assert {i: t["currency"] for i, t in stored.items()} == {
        "E2E-1": "EUR", "E2E-2": "EUR", f"MSG-{version}:P-EUR:3": "EUR", "JPY-1": "JPY",
        "BHD-1": "BHD"}
    assert stored["E2E-1"]["reference"] == "Invoice 1 line 2"
    assert (stored["E2E-1"]["debit_account"], stored["E2E-1"]["credit_account"]) == \
        (IBAN_DEBTOR, IBAN_CREDITOR)
    assert admin.balances(IBAN_ACCOUNTS) == {
        IBAN_DEBTOR: IBAN_FUNDS["EUR"] - 123456 - 10 - 9999,
        IBAN_CREDITOR: 123456 + 9999, IBAN_CREDITOR_2: 10,
        IBAN_JPY_DEBTOR: IBAN_FUNDS["JPY"] - 1500, IBAN_JPY_CREDITOR: 1500,
        IBAN_BHD_DEBTOR: IBAN_FUNDS["BHD"] - 12345, IBAN_BHD_CREDITOR: 12345}


def test_a_batch_may_debit_only_the_submitters_accounts(world, codec):
    switch, tokens = world
    admin, bank_a = sessions(world, codec)
    bank_b = Session(switch, "bank-b", tokens["bank-b"], codec)
    admin.ok("transfer", {"id": "fund-b-1", "debit_account": "a-funding", "credit_account": "b-1",
                          "amount": 1000})
    items = [{"id": "steal", "debit_account": "a-1", "credit_account": "b-1", "amount": 500},
             {"id": "own", "debit_account": "b-1", "credit_account": "a-2", "amount": 400},
             {"id": "steal-2", "debit_account": "a-funding", "credit_account": "b-1",
              "amount": 1}]
    assert bank_b.submit("b-batch", "json", items=items, count=3, total=901)["ok"]
    summary = bank_b.wait("b-batch")
    assert (summary["created"], summary["failed"]) == (1, 2)
    assert bank_b.statuses("b-batch") == {"steal": "forbidden", "own": "created",
                                          "steal-2": "forbidden"}
    assert admin.balances(["a-1", "a-2", "b-1"]) == {"a-1": FUNDS, "a-2": 400, "b-1": 600}
    # Another participant's batch does not exist for bank-a; the operator sees it.
    for op, args in (("get_batch", {"batch_id": "b-batch"}),
                     ("get_batch_results", {"batch_id": "b-batch", "offset": 0})):
        assert bank_a.fail(op, args)["code"] == "batch_not_found"
        assert admin.ok(op, args)
    # Its id is taken: bank-a cannot claim it, neither by submitting nor by uploading parts.
    error = bank_a.submit("b-batch", "json", items=items, count=3, total=901)["error"]
    assert error["code"] == "exists_with_different_fields"
    error = bank_a.fail("upload_batch_part", {"batch_id": "b-batch", "seq": 0,
                                              "data": bank_a.wire_bytes(b"id")})
    assert error["code"] == "exists_with_different_fields"
    bank_b.close()


def test_a_batch_of_an_unknown_account_or_currency_fails_per_item(world, codec):
    admin, bank_a = sessions(world, codec)
    rows = [("u1", "a-1", "nowhere", 5, "USD", None), ("u2", "a-1", "b-eur", 5, None, None),
            ("u3", "a-1", "b-1", 5, "EUR", None), ("u4", "a-1", "a-1", 5, None, None),
            ("u5", "a-1", "b-1", 5, None, None)]
    bank_a.submit("mixed", "csv", content=csv_file(rows), count=5, total=25)
    assert bank_a.wait("mixed")["created"] == 1
    assert bank_a.statuses("mixed") == {"u1": "account_not_found", "u2": "currency_mismatch",
                                        "u3": "currency_mismatch", "u4": "same_account",
                                        "u5": "created"}
    assert admin.balances(ACCOUNTS)["b-1"] == 5
