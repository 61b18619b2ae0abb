"""pain.002 status reports, read back with ElementTree as the customer's software would."""

import xml.etree.ElementTree as ET

import pytest

from batches.batch_formats_support import Block, Tx, pain001
from payswitch.protocol.batch_files import REASON_CODES, parse_batch, pain002, status_reason_code

NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"}


def parsed_meta(version: str = "09") -> dict:
    doc = pain001([
        Block("PMT-1", [Tx("E2E-1", "10.00"), Tx("NOTPROVIDED", "2.00")]),
        Block("PMT-2", [Tx("E2E-3", "300", "JPY"), Tx("E2E-4", "4.000", "KWD")]),
    ], version=version, msg_id="MSG-7")
    result = parse_batch("pain.001", doc, None)
    assert result.errors == []
    return result.meta


def report(statuses: list, version: str = "09") -> ET.Element:
    rows = [(index, f"id-{index}", status) for index, status in enumerate(statuses)]
    data = pain002(parsed_meta(version), rows, "2024-05-02T10:16:00Z", "STS-0001")
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(data)


def text(elem: ET.Element, path: str) -> str:
    return elem.findtext(path, namespaces=NS)


def transactions(root: ET.Element) -> list:
    return [
        (text(block, "p:OrgnlPmtInfId"), text(tx, "p:OrgnlEndToEndId"), text(tx, "p:TxSts"),
         text(tx, "p:StsRsnInf/p:Rsn/p:Cd"), text(tx, "p:StsRsnInf/p:AddtlInf"))
        for block in root.iterfind("p:CstmrPmtStsRpt/p:OrgnlPmtInfAndSts", NS)
        for tx in block.iterfind("p:TxInfAndSts", NS)
    ]


def test_all_accepted_is_acsc_with_headers_naming_the_original():
    root = report(["created", "exists", "created", "created"], version="03")
    assert root.tag == "{urn:iso:std:iso:20022:tech:xsd:pain.002.001.10}Document"
    assert text(root, "p:CstmrPmtStsRpt/p:GrpHdr/p:MsgId") == "STS-0001"
    assert text(root, "p:CstmrPmtStsRpt/p:GrpHdr/p:CreDtTm") == "2024-05-02T10:16:00Z"
    group = root.find("p:CstmrPmtStsRpt/p:OrgnlGrpInfAndSts", NS)
    assert [(child.tag.split("}")[1], child.text) for child in group] == [
        ("OrgnlMsgId", "MSG-7"), ("OrgnlMsgNmId", "pain.001.001.03"),
        ("OrgnlCreDtTm", "2024-05-02T10:15:00"), ("OrgnlNbOfTxs", "4"), ("GrpSts", "ACSC")]
    assert transactions(root) == [
        ("PMT-1", "E2E-1", "ACSC", None, None), ("PMT-1", "NOTPROVIDED", "ACSC", None, None),
        ("PMT-2", "E2E-3", "ACSC", None, None), ("PMT-2", "E2E-4", "ACSC", None, None)]


def test_mixed_results_are_part_with_a_reason_per_rejected_transaction():
    root = report(["created", "insufficient_funds", "exists_with_different_fields", "created"])
    assert text(root, "p:CstmrPmtStsRpt/p:OrgnlGrpInfAndSts/p:GrpSts") == "PART"
    assert transactions(root) == [
        ("PMT-1", "E2E-1", "ACSC", None, None),
        ("PMT-1", "NOTPROVIDED", "RJCT", "AM04", "insufficient_funds"),
        ("PMT-2", "E2E-3", "RJCT", "AM05", "exists_with_different_fields"),
        ("PMT-2", "E2E-4", "ACSC", None, None)]
    blocks = root.findall("p:CstmrPmtStsRpt/p:OrgnlPmtInfAndSts", NS)
    assert [(text(b, "p:OrgnlNbOfTxs"), text(b, "p:PmtInfSts")) for b in blocks] == [
        ("2", "PART"), ("2", "PART")]


def test_all_rejected_is_rjct_and_unknown_statuses_are_narrated():
    root = report(["forbidden", "linked_event_failed", "same_account", "linked_event_failed"])
    assert text(root, "p:CstmrPmtStsRpt/p:OrgnlGrpInfAndSts/p:GrpSts") == "RJCT"
    assert [(tx[3], tx[4]) for tx in transactions(root)] == [
        ("AG01", "forbidden"), ("MS03", "linked_event_failed"), ("NARR", "same_account"),
        ("MS03", "linked_event_failed")]


def test_rows_may_come_in_any_order_but_every_item_needs_one():
    meta = parsed_meta()
    rows = [(3, "d", "created"), (0, "a", "created"), (2, "c", "account_not_found"), (1, "b", "created")]
    root = ET.fromstring(pain002(meta, rows, "2024-05-02T10:16:00Z", "STS-2"))
    assert [tx[3] for tx in transactions(root)] == [None, None, "AC01", None]
    with pytest.raises(ValueError, match="no result for item 1"):
        pain002(meta, [row for row in rows if row[0] != 1], "2024-05-02T10:16:00Z", "STS-3")
    with pytest.raises(ValueError, match="outside"):
        pain002(meta, rows + [(-1, "e", "created")], "2024-05-02T10:16:00Z", "STS-4")


def test_reason_code_table():
    assert {status: status_reason_code(status) for status in REASON_CODES} == {
        "insufficient_funds": "AM04", "exists_with_different_fields": "AM05", "duplicate": "DUPL",
        "account_not_found": "AC01", "currency_mismatch": "AM03", "invalid_amount": "AM12",
        "forbidden": "AG01", "participant_suspended": "AC06", "net_debit_cap_exceeded": "AM02",
        "linked_event_failed": "MS03"}
    assert status_reason_code("pending_expired") == "NARR"
    for success in ("created", "exists"):
        with pytest.raises(ValueError):
            status_reason_code(success)


def test_text_from_the_original_file_is_escaped():
    meta = {**parsed_meta(), "msg_id": "A&B <7>"}
    rows = [(index, "x", "created") for index in range(4)]
    root = ET.fromstring(pain002(meta, rows, "2024-05-02T10:16:00Z", "STS-5"))
    assert text(root, "p:CstmrPmtStsRpt/p:OrgnlGrpInfAndSts/p:OrgnlMsgId") == "A&B <7>"
