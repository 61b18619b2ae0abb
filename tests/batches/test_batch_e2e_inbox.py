"""The drop folder against a real switch: files renamed into `DATA/inbox/<participant>/` are
processed, results appear in `DATA/outbox/<participant>/`, originals move to
`DATA/archive/<participant>/`; files still being written (`.tmp`, `.part`, dot-files) are
never picked up, and dropping a file again pays nothing twice."""
import csv
import io
import os
import time
import xml.etree.ElementTree as ET

import pytest

from batches.batch_e2e_support import (
    ACCOUNTS, IBAN_CREDITOR, IBAN_CREDITOR_2, IBAN_DEBTOR, IBAN_FUNDS, Session,
    create_iban_accounts, csv_file, running_switch,
)
from batches.batch_formats_support import Block, Tx, pain001
from support.world import FUNDS

NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"}
WAIT_S = 15.0


@pytest.fixture
def world(tmp_path):
    with running_switch(tmp_path) as (switch, tokens):
        with Session(switch, "admin", tokens["admin"], "msgpack") as admin:
            yield switch, admin


def folders(switch):
    return tuple(switch.data_dir / name / "bank-a" for name in ("inbox", "outbox", "archive"))


def drop(inbox, name: str, content: bytes) -> None:
    """Write under a temporary name, then rename: the convention a sender must follow."""
    inbox.mkdir(parents=True, exist_ok=True)
    temporary = inbox / f"{name}.tmp"
    temporary.write_bytes(content)
    os.rename(temporary, inbox / name)


def wait_for(path, timeout_s: float = WAIT_S):
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear within {timeout_s}s"
        time.sleep(0.05)
    return path


def wait_archived(inbox, archive, name: str, timeout_s: float = WAIT_S) -> None:
    """The original has left the inbox for the archive."""
    deadline = time.monotonic() + timeout_s
    while (inbox / name).exists() or not (archive / name).exists():
        assert time.monotonic() < deadline, f"{name} was not archived within {timeout_s}s"
        time.sleep(0.05)


def read_results(path) -> list[list[str]]:
    data = path.read_bytes()
    assert data.startswith(b"index,id,status\r\n")
    return list(csv.reader(io.StringIO(data.decode())))[1:]


def test_csv_files_from_the_inbox(world):
    switch, admin = world
    inbox, outbox, archive = folders(switch)
    # Still being written: never picked up, whatever their content.
    inbox.mkdir(parents=True)
    waiting = csv_file([("w1", "a-1", "b-1", 1, "USD", None)])
    for name in ("later.csv.tmp", "later2.csv.part", ".later3.csv", "notes.txt"):
        (inbox / name).write_bytes(waiting)
    rows = [("i1", "a-1", "b-1", 100, "USD", "salary"), ("i2", "a-2", "b-1", 5, "USD", None),
            ("i3", "a-1", "a-2", 40, None, None)]
    drop(inbox, "payroll.csv", csv_file(rows))
    results = wait_for(outbox / "payroll.csv.results.csv")
    wait_archived(inbox, archive, "payroll.csv")
    assert read_results(results) == [["0", "i1", "created"], ["1", "i2", "insufficient_funds"],
                                     ["2", "i3", "created"]]
    assert admin.balances(["a-1", "a-2", "b-1"]) == {"a-1": FUNDS - 140, "a-2": 40, "b-1": 100}
    assert (archive / "payroll.csv").read_bytes() == csv_file(rows)

    # A rejected file gets a reason per line; an `.atomic.` file is all or nothing.
    drop(inbox, "broken.csv", csv_file([("x1", "a-1", "b-1", "1.5", "USD", None),
                                        ("x2", "a-1", "b-1", 2, "USD", None)]))
    drop(inbox, "all.atomic.csv", csv_file([("y1", "a-1", "b-1", 10, "USD", None),
                                            ("y2", "a-2", "b-1", 1000, "USD", None)]))
    rejected = wait_for(outbox / "broken.csv.rejected.txt").read_text()
    assert rejected.startswith("line 2: amount '1.5' must be a whole number"), rejected
    wait_archived(inbox, archive, "broken.csv")
    assert read_results(wait_for(outbox / "all.atomic.csv.results.csv")) == \
        [["0", "y1", "linked_event_failed"], ["1", "y2", "insufficient_funds"]]
    wait_archived(inbox, archive, "all.atomic.csv")

    # Several scans later, the half-written files are still untouched.
    time.sleep(1.5)
    for name in ("later.csv.tmp", "later2.csv.part", ".later3.csv", "notes.txt"):
        assert (inbox / name).read_bytes() == waiting, name
        assert not any(p.name.startswith(name.lstrip(".")) for p in outbox.iterdir()), name
    assert admin.ok("lookup_transfers", {"ids": ["w1", "x2", "y1"]})["transfers"] == []
    # Renamed to its final name, it is processed.
    os.rename(inbox / "later.csv.tmp", inbox / "later.csv")
    assert read_results(wait_for(outbox / "later.csv.results.csv")) == [["0", "w1", "created"]]

    # The same file dropped again: the same outcome, nothing paid twice.
    before = admin.balances(ACCOUNTS)
    (outbox / "payroll.csv.results.csv").unlink()
    drop(inbox, "payroll.csv", csv_file(rows))
    assert read_results(wait_for(outbox / "payroll.csv.results.csv")) == \
        [["0", "i1", "created"], ["1", "i2", "insufficient_funds"], ["2", "i3", "created"]]
    wait_archived(inbox, archive, "payroll.csv")
    # Under another name too: the batch id comes from the content, so the earlier outcome.
    drop(inbox, "payroll-copy.csv", csv_file(rows))
    assert read_results(wait_for(outbox / "payroll-copy.csv.results.csv"))[0][2] == "created"
    assert admin.balances(ACCOUNTS) == before


def tx_statuses(report: ET.Element) -> list[tuple]:
    found = []
    for tx in report.iterfind(".//p:TxInfAndSts", NS):
        found.append((tx.findtext("p:OrgnlEndToEndId", namespaces=NS),
                      tx.findtext("p:TxSts", namespaces=NS),
                      tx.findtext("p:StsRsnInf/p:Rsn/p:Cd", namespaces=NS),
                      tx.findtext("p:StsRsnInf/p:AddtlInf", namespaces=NS)))
    return found


def test_pain001_from_the_inbox_gets_a_pain002_report(world):
    switch, admin = world
    inbox, outbox, archive = folders(switch)
    create_iban_accounts(admin)
    admin.ok("transfer", {"id": "TAKEN", "debit_account": IBAN_DEBTOR,
                          "credit_account": IBAN_CREDITOR, "amount": 1})
    document = pain001([
        Block("PAY-1", [Tx("OK-1", "10.00", creditor=IBAN_CREDITOR),
                        Tx("TOO-MUCH", "2000000.00", creditor=IBAN_CREDITOR),
                        Tx("TAKEN", "3.00", creditor=IBAN_CREDITOR),
                        Tx("NOWHERE", "1.00", creditor="XX00UNKNOWN0000")],
              debtor=IBAN_DEBTOR),
        Block("PAY-2", [Tx("NOTPROVIDED", "0.50", creditor=IBAN_CREDITOR_2)],
              debtor=IBAN_DEBTOR),
    ], version="09", msg_id="INBOX-MSG-1")
    drop(inbox, "payments.xml", document)
    report_path = wait_for(outbox / "payments.xml.pain002.xml")
    wait_archived(inbox, archive, "payments.xml")
    assert read_results(outbox / "payments.xml.results.csv") == [
        ["0", "OK-1", "created"], ["1", "TOO-MUCH", "insufficient_funds"],
        ["2", "TAKEN", "exists_with_different_fields"], ["3", "NOWHERE", "account_not_found"],
        ["4", "INBOX-MSG-1:PAY-2:1", "created"]]
    report = ET.fromstring(report_path.read_bytes())
    assert report.tag == "{%s}Document" % NS["p"]
    group = report.find(".//p:OrgnlGrpInfAndSts", NS)
    assert group.findtext("p:OrgnlMsgId", namespaces=NS) == "INBOX-MSG-1"
    assert group.findtext("p:OrgnlMsgNmId", namespaces=NS) == "pain.001.001.09"
    assert group.findtext("p:OrgnlNbOfTxs", namespaces=NS) == "5"
    assert group.findtext("p:GrpSts", namespaces=NS) == "PART"
    blocks = [(b.findtext("p:OrgnlPmtInfId", namespaces=NS),
               b.findtext("p:PmtInfSts", namespaces=NS))
              for b in report.iterfind(".//p:OrgnlPmtInfAndSts", NS)]
    assert blocks == [("PAY-1", "PART"), ("PAY-2", "ACSC")]
    assert tx_statuses(report) == [
        ("OK-1", "ACSC", None, None),
        ("TOO-MUCH", "RJCT", "AM04", "insufficient_funds"),
        ("TAKEN", "RJCT", "AM05", "exists_with_different_fields"),
        ("NOWHERE", "RJCT", "AC01", "account_not_found"),
        ("NOTPROVIDED", "ACSC", None, None)]
    assert admin.balances([IBAN_DEBTOR, IBAN_CREDITOR, IBAN_CREDITOR_2]) == {
        IBAN_DEBTOR: IBAN_FUNDS["EUR"] - 1 - 1000 - 50, IBAN_CREDITOR: 1001,
        IBAN_CREDITOR_2: 50}
    # Dropped again: the same report, nothing paid twice.
    first = tx_statuses(report)
    report_path.unlink()
    drop(inbox, "payments.xml", document)
    assert tx_statuses(ET.fromstring(wait_for(report_path).read_bytes())) == first
    wait_archived(inbox, archive, "payments.xml")
    assert admin.balances([IBAN_DEBTOR])[IBAN_DEBTOR] == IBAN_FUNDS["EUR"] - 1051


def test_a_refused_inbox_file_gets_an_outcome_and_leaves_the_inbox(world):
    switch, admin = world
    inbox, outbox, archive = folders(switch)
    content = csv_file([("z1", "a-1", "b-1", 5, "USD", None)])
    drop(inbox, "pay.csv", content)
    drop(inbox, "pay.atomic.csv", content)  # the same file, asked for all-or-nothing
    deadline = time.monotonic() + 4.0
    names = {"pay.csv", "pay.atomic.csv"}
    while time.monotonic() < deadline and any((inbox / n).exists() for n in names):
        time.sleep(0.05)
    outcomes = sorted(p.name for p in outbox.iterdir()) if outbox.exists() else []
    assert admin.balances(["b-1"]) == {"b-1": 5}  # paid once, whichever file won
    assert [n for n in names if (inbox / n).exists()] == [], (outcomes, switch.log()[-600:])
    assert len(outcomes) == 2, outcomes  # one results.csv, one rejected.txt
