"""ISO 20022 pain.001 CustomerCreditTransferInitiation batches (.03, .09 and kin).

Mapping (docs/protocol.md "submit_batch"): transfer id = PmtId/EndToEndId, or
`MsgId:PmtInfId:n` when it is NOTPROVIDED, n being the transaction's 1-based
position within its PmtInf (positions are what a pain.002 reader can match when
there is no id); debit account = PmtInf/DbtrAcct/Id/IBAN; credit account =
CdtrAcct/Id/IBAN; amount = Amt/InstdAmt in minor units of its Ccy; currency =
Ccy; reference = the RmtInf/Ustrd lines joined by one space.

The document streams through iterparse: each transaction is read when it ends
and its PmtInf is then emptied, so memory holds the items, not the tree. Only
the elements named above are read; others (agents, names, dates) are ignored.
"""

import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

from .. import ProtocolError, is_valid_id, normalize_transfer
from ..values import MAX_MONEY

from .currencies import minor_units, to_minor_units
from .pain001_controls import Tally, check_controls
from .parsed import ParsedBatch, ProblemLog, finish
from .xml_guard import MAX_BYTES, refusal

__all__ = ["parse_pain001", "NOT_PROVIDED", "MAX_BYTES"]

NOT_PROVIDED = "NOTPROVIDED"
_ROOT = re.compile(r"\{urn:iso:std:iso:20022:tech:xsd:(pain\.001\.001\.[0-9]{2})\}Document")
_NAMES = (
    "CstmrCdtTrfInitn", "GrpHdr", "MsgId", "CreDtTm", "NbOfTxs", "CtrlSum", "PmtInf", "PmtInfId",
    "DbtrAcct", "Id", "IBAN", "CdtTrfTxInf", "PmtId", "EndToEndId", "Amt", "InstdAmt", "CdtrAcct",
    "RmtInf", "Ustrd",
)
# The tree between two clears stays small in a real file (a transaction has some
# 20-50 elements); a bound keeps a hostile one (millions of <a/> in a single
# transaction: ~100 bytes of memory per 4 input bytes) from exhausting memory.
_MAX_RETAINED = 50_000
# Stands in for an unusable DbtrAcct (reported once per PmtInf) so that each
# transaction's own fields are still checked; such items are never kept.
_STAND_IN_ACCOUNT = "unusable-debtor-account"


def parse_pain001(content: bytes, max_items: int, max_bytes: int = MAX_BYTES) -> ParsedBatch:
    problems = ProblemLog()
    refused = refusal(content, max_bytes)
    if refused:
        problems.add("document", refused)
        return finish([], problems)
    reader = _Reader(problems, max_items)
    try:
        complete = reader.read(ET.iterparse(io.BytesIO(content), events=("start", "end")))
    except ET.ParseError as exc:
        problems.add("document", f"malformed XML: {exc}")
        complete = False
    if complete:
        reader.check_group()
    return finish(reader.items, problems, reader.meta())


def _text(elem: ET.Element | None, *path: str) -> str | None:
    """Text of the element reached by child tags `path` (plain-tag find stays in C)."""
    for tag in path:
        if elem is None:
            return None
        elem = elem.find(tag)
    return None if elem is None else elem.text


class _PmtInf:
    """One PmtInf block; its header is read at its first transaction (or its end)."""

    __slots__ = ("elem", "position", "id", "where", "nb_of_txs", "ctrl_sum", "debtor", "tally")

    def __init__(self, elem: Any, position: int):
        self.elem = elem
        self.position = position
        self.id: str | None = None  # None until the header is read
        self.where = f"PmtInf #{position}"
        self.nb_of_txs: str | None = None
        self.ctrl_sum: str | None = None
        self.debtor: str | None = None
        self.tally = Tally()


class _Reader:
    def __init__(self, problems: ProblemLog, max_items: int):
        self.problems = problems
        self.max_items = max_items
        self.tags: Any = None  # SimpleNamespace of namespaced tags, once the root is known
        self.version: str | None = None
        self.initiation: Any = None  # the CstmrCdtTrfInitn element, emptied after each block
        # (MsgId, NbOfTxs, CtrlSum, CreDtTm) texts
        self.group: tuple[str | None, str | None, str | None, str | None] | None = None
        self.pmt: Any = None  # the _PmtInf being read
        self.pmt_count = 0
        self.pmt_ids: list[str] = []
        self.total = Tally()
        self.items: list[dict[str, Any]] = []
        # per item (PmtInfId, EndToEndId)
        self.transactions: list[tuple[str, str | None]] = []

    def meta(self) -> dict[str, Any]:
        msg_id, _, _, created = self.group or (None, None, None, None)
        return {"version": self.version, "msg_id": msg_id, "created": created,
                "pmt_inf": self.pmt_ids, "transactions": self.transactions}

    def read(self, events: Iterable[tuple[str, ET.Element]]) -> bool:
        """Walk the document; False when it stopped early (wrong root, too many items)."""
        depth = retained = 0
        for event, elem in events:
            if event == "start":
                depth += 1
                retained += 1
                if depth <= 3 and not self._start(depth, elem):
                    return False
                if retained > _MAX_RETAINED:
                    self.problems.add("document", f"more than {_MAX_RETAINED} elements in one"
                                      " transaction or block header")
                    return False
                continue
            if depth == 4 and self.pmt is not None and elem.tag == self.tags.CdtTrfTxInf:
                if not self._transaction(elem):
                    return False
                retained = 0
            elif depth == 3:
                self._end_block(elem)
                retained = 0
            depth -= 1
        return True

    def _start(self, depth: int, elem: ET.Element) -> bool:
        if depth == 1:
            return self._root(elem)
        if depth == 2:
            if elem.tag != self.tags.CstmrCdtTrfInitn:
                self.problems.add("document", f"expected CstmrCdtTrfInitn, found {elem.tag[:120]}")
                return False
            self.initiation = elem
        elif elem.tag == self.tags.PmtInf:
            self._open_pmt(elem)
        return True

    def _root(self, elem: ET.Element) -> bool:
        match = _ROOT.fullmatch(elem.tag)
        if match is None:
            self.problems.add("document", f"not a pain.001 document: root element is {elem.tag[:120]}")
            return False
        self.version = match[1]
        namespace = elem.tag[:-len("Document")]
        self.tags = SimpleNamespace(**{name: namespace + name for name in _NAMES})
        return True

    def _end_block(self, elem: ET.Element) -> None:
        if elem.tag == self.tags.GrpHdr:
            self._group_header(elem)
        elif elem.tag == self.tags.PmtInf:
            self._close_pmt()
        self.initiation.clear()  # the block has been read: let it go

    def _group_header(self, elem: ET.Element) -> None:
        tags = self.tags
        if self.group is not None:
            self.problems.add("GrpHdr", "repeated")
            return
        msg_id = _text(elem, tags.MsgId)
        if not msg_id:
            self.problems.add("GrpHdr", "MsgId missing")
        self.group = (msg_id, _text(elem, tags.NbOfTxs), _text(elem, tags.CtrlSum),
                      _text(elem, tags.CreDtTm))

    def check_group(self) -> None:
        if self.group is None:
            self.problems.add("GrpHdr", "missing")
        else:
            _, nb_of_txs, ctrl_sum, _ = self.group
            check_controls("GrpHdr", self.total, nb_of_txs, ctrl_sum, self.problems, True)
        if self.pmt_count == 0:
            self.problems.add("CstmrCdtTrfInitn", "no PmtInf")

    # --- PmtInf blocks ---

    def _open_pmt(self, elem: ET.Element) -> None:
        if self.group is None and self.pmt_count == 0:
            self.problems.add("GrpHdr", "must come before the first PmtInf")
        self.pmt_count += 1
        self.pmt = _PmtInf(elem, self.pmt_count)

    def _pmt_header(self, pmt: _PmtInf) -> None:
        tags, elem = self.tags, pmt.elem
        pmt.id = _text(elem, tags.PmtInfId) or ""
        pmt.nb_of_txs = _text(elem, tags.NbOfTxs)
        pmt.ctrl_sum = _text(elem, tags.CtrlSum)
        pmt.debtor = _text(elem, tags.DbtrAcct, tags.Id, tags.IBAN)
        if not pmt.id:
            self.problems.add(pmt.where, "PmtInfId missing")
        elif pmt.id in self.pmt_ids:  # a handful of blocks: a list is fine
            self.problems.add(pmt.where, f"PmtInfId {pmt.id!r} repeated")
        else:
            pmt.where = f"PmtInf {pmt.id}"
        self.pmt_ids.append(pmt.id)
        if not is_valid_id(pmt.debtor):
            self.problems.add(pmt.where, "DbtrAcct/Id/IBAN missing or not a valid account id")
            pmt.debtor = None

    def _close_pmt(self) -> None:
        pmt, self.pmt = self.pmt, None
        if pmt.id is None:
            self._pmt_header(pmt)
        if pmt.tally.count == 0:
            self.problems.add(pmt.where, "no CdtTrfTxInf")
        check_controls(pmt.where, pmt.tally, pmt.nb_of_txs, pmt.ctrl_sum, self.problems, False)

    # --- transactions ---

    def _transaction(self, tx: ET.Element) -> bool:
        pmt = self.pmt
        if pmt.id is None:
            self._pmt_header(pmt)
        # Empty the block: the parser may already be building the next transaction,
        # which stays reachable through its own end event.
        pmt.elem.clear()
        position = pmt.tally.count + 1
        where = f"{pmt.where} CdtTrfTxInf {position}"
        if self.total.count == self.max_items:
            self.problems.add(where, f"more than {self.max_items} items")
            return False
        end_to_end = _text(tx, self.tags.PmtId, self.tags.EndToEndId)
        transfer_id = self._transfer_id(pmt, position, end_to_end, where)
        amount, currency = self._amount(tx, where)
        if transfer_id is not None and self._keep(tx, pmt, transfer_id, amount, currency, where):
            self.transactions.append((pmt.id, end_to_end))
        return True

    def _transfer_id(self, pmt: _PmtInf, position: int, end_to_end: str | None,
                     where: str) -> str | None:
        if not end_to_end:
            self.problems.add(where, "PmtId/EndToEndId missing")
            return None
        if end_to_end == NOT_PROVIDED:
            msg_id = self.group[0] if self.group else None
            transfer_id = f"{msg_id}:{pmt.id}:{position}"
            if not is_valid_id(transfer_id):
                self.problems.add(where, f"EndToEndId NOTPROVIDED: the derived id {transfer_id[:100]!r}"
                                  " is not a valid transfer id (1-64 of A-Z a-z 0-9 . _ : -)")
                return None
            return transfer_id
        if not is_valid_id(end_to_end):
            self.problems.add(where, f"EndToEndId {end_to_end[:100]!r} is not a valid transfer id"
                              " (1-64 of A-Z a-z 0-9 . _ : -)")
            return None
        return end_to_end

    def _amount(self, tx: ET.Element, where: str) -> tuple[int | None, str | None]:
        """(minor units, currency); counts the transaction in the tallies."""
        instructed = tx.find(self.tags.Amt)
        instructed = None if instructed is None else instructed.find(self.tags.InstdAmt)
        currency = None if instructed is None else instructed.get("Ccy")
        try:
            if instructed is None:
                raise ValueError("Amt/InstdAmt missing (EqvtAmt is not supported)")
            if currency is None:
                raise ValueError("InstdAmt has no Ccy")
            amount_text = instructed.text or ""
            minor = to_minor_units(amount_text, currency)
        except ValueError as exc:
            self._count(None, 0)
            self.problems.add(where, str(exc))
            return None, currency
        self._count(minor, minor_units(currency))
        if not 0 < minor <= MAX_MONEY:
            self.problems.add(where, f"amount {amount_text.strip()[:50]} {currency} must be"
                              f" more than zero and at most {MAX_MONEY} minor units")
            return None, currency
        return minor, currency

    def _count(self, minor: int | None, decimals: int | None) -> None:
        for tally in (self.pmt.tally, self.total):
            if minor is None or decimals is None:
                tally.add_unreadable()
            else:
                tally.add(minor, decimals)

    def _keep(self, tx: ET.Element, pmt: _PmtInf, transfer_id: str, amount: int | None,
              currency: str | None, where: str) -> bool:
        """Normalize and keep the item; False when it is not valid (its problem is noted)."""
        tags = self.tags
        remittance = tx.find(tags.RmtInf)
        lines = [] if remittance is None else [u.text or "" for u in remittance.findall(tags.Ustrd)]
        creditor = _text(tx, tags.CdtrAcct, tags.Id, tags.IBAN)
        if creditor is None:
            self.problems.add(where, "CdtrAcct/Id/IBAN missing")
            return False
        try:
            transfer = normalize_transfer({
                "id": transfer_id,
                "debit_account": pmt.debtor or _STAND_IN_ACCOUNT,
                "credit_account": creditor,
                "amount": amount or 0,
                "currency": currency if amount else None,  # a bad Ccy is already reported
                "reference": " ".join(lines) or None,
            })
        except ProtocolError as exc:
            self.problems.add(where, exc.message)
            return False
        if amount is None or pmt.debtor is None:
            return False
        self.items.append(transfer)
        return True
