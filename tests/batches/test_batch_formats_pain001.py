"""pain.001 documents as banks' customers send them: mapping, exact amounts, controls, defences."""

import time
import tracemalloc

import pytest

from batches.batch_formats_support import Block, Tx, pain001
from payswitch.protocol.batch_files import BatchProblem, parse_batch

DEBTOR = "FR1420041010050500013M02606"
CREDITOR = "DE89370400440532013000"


def parse(content: bytes, **kwargs):
    return parse_batch("pain.001", content, None, **kwargs)


def found(content: bytes, **kwargs) -> dict:
    return {problem.where: problem.reason for problem in parse(content, **kwargs).errors}


def two_blocks(version: str) -> bytes:
    return pain001([
        Block("PMT-1", [
            Tx("E2E-1", "1250.00", ustrd=["Invoice 4711", "May 2024"]),
            Tx("NOTPROVIDED", "0.10", creditor="NL91ABNA0417164300"),
        ]),
        Block("PMT-2", [
            Tx("E2E-3", "100", "JPY", ustrd=["Order 9"]),
            Tx("NOTPROVIDED", "1.005", "BHD"),
            Tx("NOTPROVIDED", "7", "USD"),
        ], debtor="GB29NWBK60161331926819", ctrl_sum="108.005"),
    ], version=version, ctrl_sum="1358.105")


@pytest.mark.parametrize("version", ["03", "09"])
def test_realistic_document_maps_every_transaction(version):
    result = parse(two_blocks(version))
    assert result.errors == []
    keys = ("id", "debit_account", "credit_account", "amount", "currency", "reference")
    assert [tuple(item[key] for key in keys) for item in result.items] == [
        ("E2E-1", DEBTOR, CREDITOR, 125000, "EUR", "Invoice 4711 May 2024"),
        ("MSG-2024-0001:PMT-1:2", DEBTOR, "NL91ABNA0417164300", 10, "EUR", None),
        ("E2E-3", "GB29NWBK60161331926819", CREDITOR, 100, "JPY", "Order 9"),
        ("MSG-2024-0001:PMT-2:2", "GB29NWBK60161331926819", CREDITOR, 1005, "BHD", None),
        ("MSG-2024-0001:PMT-2:3", "GB29NWBK60161331926819", CREDITOR, 700, "USD", None),
    ]
    assert all(not item["pending"] and not item["linked"] for item in result.items)
    assert result.control == {"count": 5, "sum": 125000 + 10 + 100 + 1005 + 700}
    assert result.meta == {
        "version": f"pain.001.001.{version}", "msg_id": "MSG-2024-0001",
        "created": "2024-05-02T10:15:00", "pmt_inf": ["PMT-1", "PMT-2"],
        "transactions": [("PMT-1", "E2E-1"), ("PMT-1", "NOTPROVIDED"), ("PMT-2", "E2E-3"),
                         ("PMT-2", "NOTPROVIDED"), ("PMT-2", "NOTPROVIDED")],
    }


def test_other_pain001_versions_of_the_same_shape_are_read():
    result = parse(pain001([Block("P", [Tx("E-1", "3.20")])], version="11"))
    assert result.errors == [] and result.items[0]["amount"] == 320
    assert result.meta["version"] == "pain.001.001.11"


def test_amounts_convert_exactly_in_each_currencys_minor_units():
    cases = [("0.10", "EUR", 10), ("1.005", "BHD", 1005), ("100", "JPY", 100),
             ("0.0001", "CLF", 1), ("92233720368547758.07", "EUR", 2**63 - 1),
             ("0.29", "EUR", 29), ("1.", "USD", 100), (".5", "USD", 50), (" 2.50 ", "EUR", 250)]
    txs = [Tx(f"E-{n}", amount, ccy) for n, (amount, ccy, _) in enumerate(cases)]
    result = parse(pain001([Block("P1", txs)]))
    assert result.errors == []
    assert [item["amount"] for item in result.items] == [minor for _, _, minor in cases]


def test_bad_amounts_are_problems_naming_the_transaction():
    cases = [("1.5", "JPY", "1 decimals, JPY allows 0"), ("1.500", "EUR", "3 decimals, EUR allows 2"),
             ("1.0005", "BHD", "4 decimals"), ("-5.00", "EUR", "negative"),
             ("0.00", "EUR", "more than zero"), ("92233720368547758.08", "EUR", "at most"),
             ("10", "XAU", "Ccy 'XAU' is not an active ISO 4217 currency code"),
             ("10", "eur", "Ccy 'eur' must be a currency code of 3 uppercase letters"),
             ("1,50", "EUR", "not a decimal number"), ("1e2", "EUR", "not a decimal number")]
    txs = [Tx("ok", "1.00")] + [Tx(f"E-{n}", amount, ccy) for n, (amount, ccy, _) in enumerate(cases)]
    problems = found(pain001([Block("P1", txs)]))
    assert sorted(problems) == sorted(f"PmtInf P1 CdtTrfTxInf {n + 2}" for n in range(len(cases)))
    for n, (_, _, words) in enumerate(cases):
        assert words in problems[f"PmtInf P1 CdtTrfTxInf {n + 2}"]


def test_missing_amount_or_currency_is_a_problem():
    doc = pain001([Block("P1", [Tx("E-1", "5.00"), Tx("E-2", "5.00")])])
    doc = doc.replace(b'<InstdAmt Ccy="EUR">5.00</InstdAmt>', b"<InstdAmt>5.00</InstdAmt>", 1)
    doc = doc.replace(b'<Amt><InstdAmt Ccy="EUR">5.00</InstdAmt></Amt>',
                      b'<Amt><EqvtAmt><Amt Ccy="EUR">5.00</Amt><CcyOfTrf>USD</CcyOfTrf></EqvtAmt></Amt>')
    assert found(doc) == {"PmtInf P1 CdtTrfTxInf 1": "InstdAmt has no Ccy",
                          "PmtInf P1 CdtTrfTxInf 2": "Amt/InstdAmt missing (EqvtAmt is not supported)"}


def test_group_header_controls_must_match():
    txs = [Tx("E-1", "0.10"), Tx("E-2", "0.20")]
    assert found(pain001([Block("P1", txs)], ctrl_sum="0.3")) == {}  # exact: no float drift
    assert found(pain001([Block("P1", txs)], ctrl_sum="0.300")) == {}
    assert found(pain001([Block("P1", txs)], nb_of_txs="3")) == {
        "GrpHdr": "NbOfTxs is 3 but there are 2 transactions"}
    assert found(pain001([Block("P1", txs)], ctrl_sum="0.31")) == {
        "GrpHdr": "CtrlSum is 0.31 but the transactions sum to 0.30"}
    assert found(pain001([Block("P1", txs)], nb_of_txs=None)) == {"GrpHdr": "NbOfTxs missing"}
    problems = parse(pain001([Block("P1", txs)], nb_of_txs="two", ctrl_sum="0,3")).errors
    assert problems == [BatchProblem("GrpHdr", "NbOfTxs 'two' is not a number"),
                        BatchProblem("GrpHdr", "CtrlSum '0,3' is not a decimal number")]


def test_payment_block_controls_must_match_and_name_the_block():
    doc = pain001([
        Block("P1", [Tx("E-1", "1.00")], nb_of_txs="1", ctrl_sum="1.00"),
        Block("P2", [Tx("E-2", "2.00"), Tx("E-3", "3", "JPY")], nb_of_txs="3"),
        Block("P3", [Tx("E-4", "4.00")], ctrl_sum="4.01"),
        Block("P4", [Tx("E-5", "5.00")], nb_of_txs=None),
    ])
    assert found(doc) == {"PmtInf P2": "NbOfTxs is 3 but there are 2 transactions",
                          "PmtInf P3": "CtrlSum is 4.01 but the transactions sum to 4.00"}


def test_a_mixed_currency_control_sum_adds_major_units_as_written():
    txs = [Tx("E-1", "1.005", "BHD"), Tx("E-2", "100", "JPY"), Tx("E-3", "0.0001", "CLF")]
    assert found(pain001([Block("P1", txs, ctrl_sum="101.0051")], ctrl_sum="101.0051")) == {}


def test_ids_that_are_not_switch_ids_are_problems_naming_the_transaction():
    long_msg = "M" * 35
    doc = pain001([Block("PMT-LONG-BLOCK-ID-0000000000000001", [
        Tx("E2E 1", "1.00"), Tx("x" * 65, "1.00"), Tx("NOTPROVIDED", "1.00"), Tx("ok.id:1-_", "1.00"),
    ])], msg_id=long_msg)
    problems = found(doc)
    where = "PmtInf PMT-LONG-BLOCK-ID-0000000000000001 CdtTrfTxInf"
    assert sorted(problems) == [f"{where} 1", f"{where} 2", f"{where} 3"]
    assert problems[f"{where} 1"].startswith("EndToEndId 'E2E 1' is not a valid transfer id")
    assert problems[f"{where} 2"].startswith("EndToEndId 'xxx")
    assert problems[f"{where} 3"].startswith(f"EndToEndId NOTPROVIDED: the derived id '{long_msg}:")


def test_missing_accounts_and_ids_are_problems():
    doc = pain001([Block("P1", [Tx("E-1", "1.00"), Tx("E-2", "1.00", creditor="not an iban")]),
                   Block("P2", [Tx("E-3", "1.00")], debtor="")])
    doc = doc.replace(b"<EndToEndId>E-1</EndToEndId>", b"", 1)
    doc = doc.replace(b"<DbtrAcct><Id><IBAN></IBAN></Id></DbtrAcct>", b"")
    assert found(doc) == {
        "PmtInf P1 CdtTrfTxInf 1": "PmtId/EndToEndId missing",
        "PmtInf P1 CdtTrfTxInf 2":
            "credit_account must be a string of 1-64 characters from A-Z a-z 0-9 . _ : -",
        "PmtInf P2": "DbtrAcct/Id/IBAN missing or not a valid account id",
    }
    no_creditor = pain001([Block("P1", [Tx("E-1", "1.00")])]).replace(
        f"<CdtrAcct><Id><IBAN>{CREDITOR}</IBAN></Id></CdtrAcct>".encode(), b"")
    assert found(no_creditor) == {"PmtInf P1 CdtTrfTxInf 1": "CdtrAcct/Id/IBAN missing"}


def test_structure_problems():
    no_header = pain001([Block("P1", [Tx("E-1", "1.00")])]).replace(
        b"<GrpHdr>", b"<GrpHdrX>").replace(b"</GrpHdr>", b"</GrpHdrX>")
    assert found(no_header) == {"GrpHdr": "missing"}
    twice = pain001([Block("P1", [Tx("E-1", "1.00")]), Block("P1", [Tx("E-2", "1.00")])])
    assert found(twice) == {"PmtInf #2": "PmtInfId 'P1' repeated"}
    empty = pain001([Block("P1", [])])
    assert found(empty) == {"PmtInf P1": "no CdtTrfTxInf"}
    assert found(pain001([])) == {"CstmrCdtTrfInitn": "no PmtInf"}


def test_problems_across_the_file_are_all_collected():
    txs = [Tx(f"E-{n}", "1.5", "JPY") for n in range(150)]
    result = parse(pain001([Block("P1", txs[:75]), Block("P2", txs[75:])]))
    assert len(result.errors) == 101
    assert result.errors[-1] == BatchProblem("batch", "... and 50 more problems")


def test_more_transactions_than_max_items_stops_with_a_problem():
    doc = pain001([Block("P1", [Tx(f"E-{n}", "1.00") for n in range(5)])])
    assert found(doc, max_items=3) == {"PmtInf P1 CdtTrfTxInf 4": "more than 3 items"}


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"><CstmrCdtTrfInitn><GrpHdr>
<MsgId>&lol9;</MsgId></GrpHdr></CstmrCdtTrfInitn></Document>
"""


def test_entity_expansion_and_external_entities_are_refused_before_parsing():
    external = pain001([Block("P1", [Tx("E-1", "1.00", ustrd=["&xxe;"])])]).replace(
        b"&amp;xxe;", b"&xxe;").replace(
        b"<Document", b'<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n<Document', 1)
    only_entity = b'<?xml version="1.0"?><!ENTITY x "y"><Document/>'
    for doc in (BILLION_LAUGHS, external, only_entity):
        started = time.perf_counter()
        result = parse(doc)
        assert time.perf_counter() - started < 0.5
        assert result.items == []
        assert [problem.where for problem in result.errors] == ["document"]
        assert "DOCTYPE/ENTITY declarations are refused" in result.errors[0].reason


def test_comments_and_cdata_are_not_declarations():
    doc = pain001([Block("P1", [Tx("E-1", "1.00")])]).replace(
        b"<Cdtr><Nm>Supplier GmbH</Nm>", b"<!-- payee --><Cdtr><Nm><![CDATA[Supplier & Sons]]></Nm>")
    assert found(doc) == {}


def test_oversized_input_is_refused_without_parsing():
    doc = pain001([Block("P1", [Tx(f"E-{n}", "1.00") for n in range(20)])])
    result = parse(doc + b"<garbage", max_bytes=len(doc))
    assert result.errors == [BatchProblem(
        "document", f"document is {len(doc) + 8} bytes, more than the limit of {len(doc)}")]
    assert parse(doc, max_bytes=len(doc)).errors == []


def test_other_encodings_are_refused():
    doc = pain001([Block("P1", [Tx("E-1", "1.00")])])
    utf16 = doc.decode("utf-8").replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    latin1 = doc.replace(b'encoding="UTF-8"', b"encoding='ISO-8859-1'")
    assert "NUL bytes" in found(utf16)["document"]
    assert "encoding 'ISO-8859-1' refused" in found(latin1)["document"]
    assert found(doc.replace(b'encoding="UTF-8"', b"encoding='utf-8'")) == {}


def test_malformed_xml_is_a_problem_not_an_exception():
    doc = pain001([Block("P1", [Tx("E-1", "1.00"), Tx("E-2", "1.00")])])
    for broken in (doc[: len(doc) // 2], doc.replace(b"</Cdtr>", b"</Cdtx>", 1),
                   doc.replace(b"Supplier GmbH", b"Supplier & Sons", 1), b"", b"not xml at all",
                   doc.replace(b"Supplier GmbH", b"&undefined;", 1)):
        problems = parse(broken).errors
        assert [problem.where for problem in problems][-1:] == ["document"]
        assert problems[-1].reason.startswith("malformed XML: ")


def test_documents_that_are_not_pain001_are_refused():
    pain008 = pain001([Block("P1", [Tx("E-1", "1.00")])]).replace(b"pain.001.001.03", b"pain.008.001.02")
    assert found(pain008)["document"].startswith("not a pain.001 document")
    no_namespace = pain001([Block("P1", [Tx("E-1", "1.00")])]).replace(
        b' xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"', b"")
    assert found(no_namespace) == {"document": "not a pain.001 document: root element is Document"}


def test_transactions_are_released_as_they_are_read():
    """Each transaction carries 20 kB that is never kept: without clearing, 2,000 of them
    would hold about 100 MB of elements; with clearing, memory stays near the items' size."""
    lines = "".join(f"<Ln>{'x' * 90}</Ln>" for _ in range(200))
    big = f"<SplmtryData><Envlp>{lines}</Envlp></SplmtryData>"
    doc = pain001([Block("P1", [Tx(f"E-{n}", "1.00", extra=big) for n in range(2000)])], version="09")
    assert len(doc) > 40_000_000
    tracemalloc.start()
    try:
        result = parse(doc)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.errors == [] and result.control["count"] == 2000
    assert peak < 10_000_000, peak


def test_a_transaction_with_a_flood_of_elements_is_refused_without_building_it():
    flood = "<SplmtryData><Envlp>" + "<a/>" * 1_000_000 + "</Envlp></SplmtryData>"
    doc = pain001([Block("P1", [Tx("E-1", "1.00"), Tx("E-2", "1.00", extra=flood)])])
    tracemalloc.start()
    try:
        result = parse(doc)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.errors == [BatchProblem(
        "document", "more than 50000 elements in one transaction or block header")]
    assert peak < 20_000_000, peak


def test_parse_rate_of_a_large_document():
    count = 100_000
    blocks = [Block(f"PMT-{b}", [Tx(f"E-{b}-{n}", f"{n % 9999 + 1}.{n % 100:02d}", ustrd=[f"Invoice {n}"])
                                 for n in range(10_000)]) for b in range(count // 10_000)]
    doc = pain001(blocks, version="09")
    started = time.perf_counter()
    result = parse(doc)
    elapsed = time.perf_counter() - started
    print(f"\npain.001: {count} transactions ({len(doc) / 1e6:.0f} MB) in {elapsed:.2f} s"
          f" = {count / elapsed:,.0f} transactions/s")
    assert result.errors == [] and result.control["count"] == count
