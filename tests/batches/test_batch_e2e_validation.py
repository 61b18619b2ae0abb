"""Batches end to end: control totals, malformed files, atomic rollback, partial results and
their paging, resubmission, over TCP against a real switch in both codecs. Whatever is
rejected moves nothing."""
import pytest

from batches.batch_e2e_support import (
    ACCOUNTS, IBAN_ACCOUNTS, IBAN_CREDITOR, IBAN_DEBTOR, Session, create_iban_accounts, csv_file,
)
from batches.batch_formats_support import Block, Tx, pain001
from support.world import FUNDS

START = {"a-funding": -FUNDS, "a-1": FUNDS, "a-2": 0, "b-1": 0, "b-eur": 0}


@pytest.fixture
def admin(world, codec):
    switch, tokens = world
    with Session(switch, "admin", tokens["admin"], codec) as session:
        yield session


@pytest.fixture
def bank_a(world, codec):
    switch, tokens = world
    with Session(switch, "bank-a", tokens["bank-a"], codec) as session:
        yield session


ROWS = [(f"r{n}", "a-1", "b-1", 100 + n, "USD", f"row {n}") for n in range(5)]
ROWS_SUM = sum(row[3] for row in ROWS)


def assert_rejected(session, batch_id, problems) -> dict:
    summary = session.wait(batch_id)
    assert summary["state"] == "rejected", summary
    assert (summary["total"], summary["created"], summary["failed"], summary["processed"]) == \
        (0, 0, 0, 0)
    assert summary["problems"] == [{"where": w, "reason": r} for w, r in problems]
    assert session.results(batch_id) == []
    return summary


# --- control totals -----------------------------------------------------------------------

def test_control_count_and_sum_mismatches_reject_the_batch(admin, bank_a):
    bank_a.submit("count", "csv", content=csv_file(ROWS), count=6, total=ROWS_SUM)
    assert_rejected(bank_a, "count", [("control", "control_count is 6 but the batch has 5 items")])
    bank_a.submit("sum", "csv", content=csv_file(ROWS), count=5, total=ROWS_SUM - 1)
    assert_rejected(bank_a, "sum", [
        ("control", f"control_sum is {ROWS_SUM - 1} but the items add up to {ROWS_SUM}")])
    items = [{"id": f"j{n}", "debit_account": "a-1", "credit_account": "b-1", "amount": 7}
             for n in range(3)]
    bank_a.submit("json-both", "json", items=items, count=2, total=22)
    assert_rejected(bank_a, "json-both", [
        ("control", "control_count is 2 but the batch has 3 items"),
        ("control", "control_sum is 22 but the items add up to 21")])
    assert admin.balances(ACCOUNTS) == START
    assert admin.ok("lookup_transfers", {"ids": [r[0] for r in ROWS] + ["j0"]})["transfers"] == []


def test_pain001_group_and_block_controls_are_checked(admin, bank_a):
    create_iban_accounts(admin)
    before = admin.balances(IBAN_ACCOUNTS)
    txs = [Tx("T-1", "10.00", creditor=IBAN_CREDITOR), Tx("T-2", "5.25", creditor=IBAN_CREDITOR)]
    cases = {
        "grp-count": (pain001([Block("P1", txs, debtor=IBAN_DEBTOR)], nb_of_txs="3"),
                      [("GrpHdr", "NbOfTxs is 3 but there are 2 transactions")]),
        "grp-sum": (pain001([Block("P1", txs, debtor=IBAN_DEBTOR)], ctrl_sum="15.24"),
                    [("GrpHdr", "CtrlSum is 15.24 but the transactions sum to 15.25")]),
        "block": (pain001([Block("P1", txs, debtor=IBAN_DEBTOR, nb_of_txs="1",
                                 ctrl_sum="15.26")], ctrl_sum="15.25"),
                  [("PmtInf P1", "NbOfTxs is 1 but there are 2 transactions"),
                   ("PmtInf P1", "CtrlSum is 15.26 but the transactions sum to 15.25")]),
        "grp-missing-count": (pain001([Block("P1", txs, debtor=IBAN_DEBTOR)], nb_of_txs=None),
                              [("GrpHdr", "NbOfTxs missing")]),
    }
    for batch_id, (document, problems) in cases.items():
        # The request's own totals are right: only the document's controls are wrong.
        assert bank_a.submit(batch_id, "pain.001", content=document, count=2, total=1525)["ok"]
        assert_rejected(bank_a, batch_id, problems)
    assert admin.balances(IBAN_ACCOUNTS) == before
    # A rejected batch id stays taken, even for the corrected file; the same submission again
    # gets the same outcome.
    fixed = pain001([Block("P1", txs, debtor=IBAN_DEBTOR)], ctrl_sum="15.25")
    error = bank_a.submit("grp-sum", "pain.001", content=fixed, count=2, total=1525)["error"]
    assert error["code"] == "exists_with_different_fields"
    again = bank_a.submit("grp-sum", "pain.001", content=cases["grp-sum"][0], count=2,
                          total=1525)
    assert again["result"] == {"batch_id": "grp-sum", "state": "rejected"}
    assert bank_a.submit("fixed", "pain.001", content=fixed, count=2, total=1525)["ok"]
    assert bank_a.wait("fixed")["created"] == 2
    assert admin.balances([IBAN_CREDITOR])[IBAN_CREDITOR] == before[IBAN_CREDITOR] + 1525


# --- malformed files ----------------------------------------------------------------------

def test_malformed_csv_rows_reject_the_whole_file_naming_each_line(admin, bank_a):
    content = (b"id,debit_account,credit_account,amount,currency,reference\n"
               b"ok-1,a-1,b-1,100,USD,fine\n"
               b"bad-amount,a-1,b-1,12.50,USD,decimal\n"
               b"ok-2,a-1,b-1,100,USD,fine\n"
               b"short,a-1,b-1,100,USD\n"
               b"bad id!,a-1,b-1,100,USD,x\n"
               b"ok-3,a-1,b-1,100,USD,fine\n")
    bank_a.submit("malformed", "csv", content=content, count=3, total=300)
    summary = bank_a.wait("malformed")
    assert summary["state"] == "rejected"
    where = [p["where"] for p in summary["problems"]]
    assert where == ["line 3", "line 5", "line 6"], summary["problems"]
    assert "12.50" in summary["problems"][0]["reason"]
    assert summary["problems"][1]["reason"] == "expected 6 fields, found 5"
    assert summary["created"] == 0
    # The good rows were not applied either.
    assert admin.ok("lookup_transfers", {"ids": ["ok-1", "ok-2", "ok-3"]})["transfers"] == []
    assert admin.balances(ACCOUNTS) == START


def test_wrong_header_and_hostile_xml_are_rejected(admin, bank_a):
    bank_a.submit("header", "csv", content=b"id,from,to,amount\nx,a-1,b-1,1\n", count=0, total=0)
    assert_rejected(bank_a, "header", [
        ("line 1", "header must be exactly id,debit_account,credit_account,amount,currency,"
                   "reference")])
    laughs = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
              b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
              b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09">&lol2;'
              b"</Document>")
    bank_a.submit("laughs", "pain.001", content=laughs, count=0, total=0)
    assert_rejected(bank_a, "laughs", [
        ("document", "DOCTYPE/ENTITY declarations are refused (entity expansion, external "
                     "entities)")])
    document = pain001([Block("P1", [Tx("", "1.00"), Tx("T-2", "1.005")], debtor="a-1")])
    bank_a.submit("pain-bad", "pain.001", content=document, count=0, total=0)
    summary = bank_a.wait("pain-bad")
    assert summary["state"] == "rejected"
    assert [p["where"] for p in summary["problems"]][:2] == \
        ["PmtInf P1 CdtTrfTxInf 1", "PmtInf P1 CdtTrfTxInf 2"], summary["problems"]
    assert admin.balances(ACCOUNTS) == START


# --- atomic -------------------------------------------------------------------------------

def test_atomic_batch_commits_all_items(admin, bank_a):
    bank_a.submit("atomic-ok", "csv", content=csv_file(ROWS), count=5, total=ROWS_SUM,
                  mode="atomic")
    summary = bank_a.wait("atomic-ok")
    assert (summary["state"], summary["created"], summary["failed"]) == ("completed", 5, 0)
    assert set(bank_a.statuses("atomic-ok").values()) == {"created"}
    assert admin.balances(["a-1", "b-1"]) == {"a-1": FUNDS - ROWS_SUM, "b-1": ROWS_SUM}


@pytest.mark.parametrize("bad_row, bad_status", [
    (("bad", "a-2", "b-1", 50, "USD", None), "insufficient_funds"),  # a-2 holds nothing
    (("bad", "a-1", "nowhere", 50, "USD", None), "account_not_found"),
    (("bad", "a-1", "b-eur", 50, None, None), "currency_mismatch"),
])
def test_atomic_batch_with_one_bad_item_rolls_back_entirely(admin, bank_a, bad_row, bad_status):
    rows = ROWS[:3] + [bad_row] + ROWS[3:]
    bank_a.submit("atomic-bad", "csv", content=csv_file(rows), count=6, total=ROWS_SUM + 50,
                  mode="atomic")
    summary = bank_a.wait("atomic-bad")
    assert (summary["state"], summary["total"], summary["created"], summary["failed"]) == \
        ("completed", 6, 0, 6)
    assert [(r["id"], r["status"]) for r in bank_a.results("atomic-bad")] == \
        [(row[0], bad_status if row[0] == "bad" else "linked_event_failed") for row in rows]
    assert admin.balances(ACCOUNTS) == START
    assert admin.ok("lookup_transfers", {"ids": [r[0] for r in rows]})["transfers"] == []
    # Nothing of it was committed, so the good items can go through in a batch of their own.
    bank_a.submit("atomic-retry", "csv", content=csv_file(ROWS), count=5, total=ROWS_SUM,
                  mode="atomic")
    assert bank_a.wait("atomic-retry")["created"] == 5


def test_atomic_batches_are_bounded(admin, bank_a):
    rows = [(f"big{n}", "a-1", "b-1", 1, "USD", None) for n in range(10_001)]
    bank_a.submit("too-big", "csv", content=csv_file(rows), count=10_001, total=10_001,
                  mode="atomic")
    assert_rejected(bank_a, "too-big", [
        ("mode", "an atomic batch is applied in one step and may hold at most 10000 items; "
                 "use partial mode")])
    bank_a.submit("just-fits", "csv", content=csv_file(rows[:10_000]), count=10_000,
                  total=10_000, mode="atomic")
    assert bank_a.wait("just-fits")["created"] == 10_000
    assert admin.balances(["b-1"]) == {"b-1": 10_000}


# --- partial results ----------------------------------------------------------------------

def test_partial_batch_reports_each_item_and_pages_through_results(admin, bank_a):
    kinds = [
        (("a-1", "b-1", 10, "USD"), "created"),
        (("a-2", "b-1", 10, "USD"), "insufficient_funds"),
        (("a-1", "nowhere", 10, "USD"), "account_not_found"),
        (("a-1", "b-eur", 10, None), "currency_mismatch"),
        (("a-1", "a-1", 10, None), "same_account"),
        (("b-1", "a-1", 10, None), "forbidden"),
        (("a-1", "b-1", 0, None), "invalid_amount"),
        (("a-1", "a-2", 3, None), "created"),
    ]
    rows, expected = [], []
    for n in range(29):
        (debit, credit, amount, currency), status = kinds[n % len(kinds)]
        rows.append((f"p{n}", debit, credit, amount, currency, None))
        expected.append({"index": n, "id": f"p{n}", "status": status})
    total = sum(row[3] for row in rows)
    bank_a.submit("partial", "csv", content=csv_file(rows), count=29, total=total)
    summary = bank_a.wait("partial")
    created = sum(e["status"] == "created" for e in expected)
    assert (summary["state"], summary["total"], summary["processed"], summary["created"],
            summary["failed"]) == ("completed", 29, 29, created, 29 - created)
    pages, offset = [], 0
    while offset is not None:
        page = bank_a.ok("get_batch_results", {"batch_id": "partial", "offset": offset,
                                               "limit": 4})
        pages.append(page)
        offset = page["next"]
    assert [p["next"] for p in pages] == [4, 8, 12, 16, 20, 24, 28, None]
    assert [r for p in pages for r in p["results"]] == expected
    assert bank_a.results("partial", limit=8190) == expected
    assert bank_a.ok("get_batch_results", {"batch_id": "partial", "offset": 29}) == \
        {"results": [], "next": None}
    moved_b = sum(10 for n in range(29) if n % 8 == 0)
    moved_a2 = sum(3 for n in range(29) if n % 8 == 7)
    assert admin.balances(ACCOUNTS) == {**START, "a-1": FUNDS - moved_b - moved_a2,
                                        "a-2": moved_a2, "b-1": moved_b}


def test_unknown_batch_is_batch_not_found(bank_a):
    assert bank_a.fail("get_batch", {"batch_id": "never"})["code"] == "batch_not_found"
    assert bank_a.fail("get_batch_results", {"batch_id": "never"})["code"] == "batch_not_found"


# --- resubmission -------------------------------------------------------------------------

def test_resubmission_never_pays_twice(admin, bank_a):
    content = csv_file(ROWS)
    bank_a.submit("dup", "csv", content=content, count=5, total=ROWS_SUM)
    first = bank_a.wait("dup")
    first_results = bank_a.results("dup")
    after_first = admin.balances(ACCOUNTS)
    assert after_first["b-1"] == ROWS_SUM
    # Same id and content: the earlier outcome, nothing paid again, results unchanged.
    again = bank_a.submit("dup", "csv", content=content, count=5, total=ROWS_SUM)
    assert again["result"] == {"batch_id": "dup", "state": "completed"}
    assert bank_a.get("dup") == first and bank_a.results("dup") == first_results
    # The same id with anything different is refused.
    changed = csv_file(ROWS[:4] + [("r4", "a-1", "b-1", 999, "USD", "row 4")])
    for args in ({"content": changed, "count": 5, "total": ROWS_SUM - 104 + 999},
                 {"content": content, "count": 5, "total": ROWS_SUM, "mode": "atomic"},
                 {"content": content, "count": 4, "total": ROWS_SUM}):
        error = bank_a.submit("dup", "csv", **args)["error"]
        assert error["code"] == "exists_with_different_fields", args
    # The same items under a new batch id: each item is `exists`, nothing paid twice.
    bank_a.submit("dup-new-id", "csv", content=content, count=5, total=ROWS_SUM)
    summary = bank_a.wait("dup-new-id")
    assert (summary["created"], summary["failed"]) == (5, 0)  # `exists` counts as created
    assert set(bank_a.statuses("dup-new-id").values()) == {"exists"}
    # The same ids with other amounts are refused item by item.
    bank_a.submit("dup-changed", "csv", content=changed, count=5, total=ROWS_SUM - 104 + 999)
    assert bank_a.wait("dup-changed")["failed"] == 1
    assert bank_a.statuses("dup-changed") == {
        **{row[0]: "exists" for row in ROWS[:4]}, "r4": "exists_with_different_fields"}
    assert admin.balances(ACCOUNTS) == after_first


def test_resubmitting_an_uploaded_batch_without_its_parts(admin, bank_a):
    content = csv_file(ROWS)
    bank_a.upload("up-dup", content, part_bytes=40)
    bank_a.submit("up-dup", "csv", count=5, total=ROWS_SUM)
    first = bank_a.wait("up-dup")
    # Its parts were consumed: uploading again is refused, and a submit without content
    # (a retry after a lost reply) gets the earlier outcome.
    error = bank_a.fail("upload_batch_part", {"batch_id": "up-dup", "seq": 0,
                                              "data": bank_a.wire_bytes(content[:40])})
    assert error["code"] == "exists_with_different_fields"
    again = bank_a.submit("up-dup", "csv", count=5, total=ROWS_SUM)
    assert again["result"] == {"batch_id": "up-dup", "state": "completed"}
    assert bank_a.get("up-dup") == first
    assert admin.balances(["b-1"]) == {"b-1": ROWS_SUM}
