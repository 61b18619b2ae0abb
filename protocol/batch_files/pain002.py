"""ISO 20022 pain.002.001.10 CustomerPaymentStatusReport for a processed pain.001 batch.

One OrgnlPmtInfAndSts per original PmtInf, one TxInfAndSts per transaction in
file order, so a transaction whose EndToEndId was NOTPROVIDED is found by its
position, as when its transfer id was derived. Every rejected transaction
carries an ISO external status reason code and, in AddtlInf, our own status.
"""

import itertools
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Any

from .. import codes

__all__ = ["NAMESPACE", "REASON_CODES", "DEFAULT_REASON", "pain002", "status_reason_code"]

NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"
ACCEPTED = frozenset({codes.CREATED, codes.EXISTS})  # `exists` is `created`, sent twice

# Our item status -> ExternalStatusReason1Code.
REASON_CODES = {
    codes.INSUFFICIENT_FUNDS: "AM04",  # InsufficientFunds
    codes.EXISTS_WITH_DIFFERENT_FIELDS: "AM05",  # Duplication: the id is taken
    "duplicate": "DUPL",  # DuplicatePayment: for a duplicate found outside the ledger
    codes.ACCOUNT_NOT_FOUND: "AC01",  # IncorrectAccountNumber
    codes.CURRENCY_MISMATCH: "AM03",  # NotAllowedCurrency
    codes.INVALID_AMOUNT: "AM12",  # InvalidAmount
    codes.FORBIDDEN: "AG01",  # TransactionForbidden: not the submitter's account
    codes.PARTICIPANT_SUSPENDED: "AC06",  # BlockedAccount
    codes.NET_DEBIT_CAP_EXCEEDED: "AM02",  # NotAllowedAmount: above the allowed maximum
    # Nothing wrong with the transaction itself: another one of its atomic batch
    # failed. No ISO code says that; MS03 (NotSpecifiedReasonAgentGenerated) is
    # the code for a rejection decided by the agent, and AddtlInf says why.
    codes.LINKED_EVENT_FAILED: "MS03",
}
DEFAULT_REASON = "NARR"  # Narrative: AddtlInf carries our status code

# The containers are literal so that a million transactions are serialized one
# small ElementTree subtree at a time instead of as one giant tree.
_HEAD = f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{NAMESPACE}"><CstmrPmtStsRpt>'
_TAIL = "</CstmrPmtStsRpt></Document>\n"


def status_reason_code(status: str) -> str:
    """ISO reason code for a failing item status (ValueError for a success)."""
    if status in ACCEPTED:
        raise ValueError(f"{status!r} is not a failure: it has no reason code")
    return REASON_CODES.get(status, DEFAULT_REASON)


def pain002(parsed_meta: dict[str, Any], rows: Iterable[tuple[int, str, str]], created_at_iso: str,
            message_id: str) -> bytes:
    """The status report; `rows` are (index, id, status), one for every item."""
    transactions = parsed_meta["transactions"]
    statuses = _statuses(rows, len(transactions))
    parts = [_HEAD, _xml(_group_header(message_id, created_at_iso)),
             _xml(_original_group(parsed_meta, statuses))]
    positions = itertools.groupby(range(len(transactions)), key=lambda i: transactions[i][0])
    for pmt_inf_id, grouped in positions:
        indexes = list(grouped)
        block = [statuses[i] for i in indexes]
        parts.append("<OrgnlPmtInfAndSts>")
        parts += (_xml(_leaf("OrgnlPmtInfId", pmt_inf_id)),
                  _xml(_leaf("OrgnlNbOfTxs", str(len(block)))),
                  _xml(_leaf("PmtInfSts", _group_status(block))))
        parts += (_xml(_transaction(transactions[i][1], statuses[i])) for i in indexes)
        parts.append("</OrgnlPmtInfAndSts>")
    parts.append(_TAIL)
    return "".join(parts).encode("utf-8")


def _statuses(rows: Iterable[tuple[int, str, str]], count: int) -> list[str]:
    statuses: list[Any] = [None] * count
    for index, _transfer_id, status in rows:
        if not 0 <= index < count:
            raise ValueError(f"result index {index} is outside 0..{count - 1}")
        statuses[index] = status
    if None in statuses:
        raise ValueError(f"no result for item {statuses.index(None)}")
    return statuses


def _group_status(statuses: list[str]) -> str:
    accepted = sum(status in ACCEPTED for status in statuses)
    if accepted == len(statuses):
        return "ACSC"
    return "RJCT" if accepted == 0 else "PART"


def _group_header(message_id: str, created_at_iso: str) -> ET.Element:
    header = ET.Element("GrpHdr")
    _leaf("MsgId", message_id, header)
    _leaf("CreDtTm", created_at_iso, header)
    return header


def _original_group(meta: dict[str, Any], statuses: list[str]) -> ET.Element:
    group = ET.Element("OrgnlGrpInfAndSts")
    _leaf("OrgnlMsgId", meta["msg_id"], group)
    _leaf("OrgnlMsgNmId", meta["version"], group)
    if meta.get("created"):
        _leaf("OrgnlCreDtTm", meta["created"], group)
    _leaf("OrgnlNbOfTxs", str(len(statuses)), group)
    _leaf("GrpSts", _group_status(statuses), group)
    return group


def _transaction(end_to_end_id: str, status: str) -> ET.Element:
    tx = ET.Element("TxInfAndSts")
    _leaf("OrgnlEndToEndId", end_to_end_id, tx)
    if status in ACCEPTED:
        _leaf("TxSts", "ACSC", tx)
        return tx
    _leaf("TxSts", "RJCT", tx)
    reason = ET.SubElement(tx, "StsRsnInf")
    _leaf("Cd", status_reason_code(status), ET.SubElement(reason, "Rsn"))
    _leaf("AddtlInf", status[:105], reason)  # Max105Text
    return tx


def _leaf(tag: str, text: str, parent: ET.Element | None = None) -> ET.Element:
    elem = ET.Element(tag) if parent is None else ET.SubElement(parent, tag)
    elem.text = text
    return elem


def _xml(elem: ET.Element) -> str:
    return ET.tostring(elem, encoding="unicode")
