"""Real pain.001 documents, written as a bank customer's software would write them."""

from dataclasses import dataclass, field
from xml.sax.saxutils import escape

NS = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.{}"


@dataclass
class Tx:
    end_to_end: str
    amount: str  # major units, as written in the file
    ccy: str = "EUR"
    creditor: str = "DE89370400440532013000"
    ustrd: list = field(default_factory=list)
    extra: str = ""  # more XML at the end of the transaction (ignored by the parser)


@dataclass
class Block:
    pmt_inf_id: str
    txs: list
    debtor: str = "FR1420041010050500013M02606"
    nb_of_txs: str | None = "auto"  # "auto": the true count; None: element left out
    ctrl_sum: str | None = None


def pain001(blocks: list, version: str = "03", msg_id: str = "MSG-2024-0001",
            nb_of_txs: str | None = "auto", ctrl_sum: str | None = None) -> bytes:
    count = sum(len(block.txs) for block in blocks)
    header = "".join([
        f"<MsgId>{escape(msg_id)}</MsgId><CreDtTm>2024-05-02T10:15:00</CreDtTm>",
        _opt("NbOfTxs", str(count) if nb_of_txs == "auto" else nb_of_txs),
        _opt("CtrlSum", ctrl_sum),
        "<InitgPty><Nm>ACME Corp</Nm></InitgPty>",
    ])
    body = "".join(_block(block, version) for block in blocks)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{NS.format(version)}">'
            f"\n  <CstmrCdtTrfInitn>\n    <GrpHdr>{header}</GrpHdr>\n{body}"
            "  </CstmrCdtTrfInitn>\n</Document>\n").encode("utf-8")


def _block(block: Block, version: str) -> str:
    new = version >= "09"
    date = "<Dt>2024-05-03</Dt>" if new else "2024-05-03"  # .09 wraps the date
    bic = "BICFI" if new else "BIC"
    nb = str(len(block.txs)) if block.nb_of_txs == "auto" else block.nb_of_txs
    txs = "".join(_tx(tx, bic, new) for tx in block.txs)
    return (f"    <PmtInf><PmtInfId>{escape(block.pmt_inf_id)}</PmtInfId><PmtMtd>TRF</PmtMtd>"
            f"<BtchBookg>false</BtchBookg>{_opt('NbOfTxs', nb)}{_opt('CtrlSum', block.ctrl_sum)}"
            f"<PmtTpInf><SvcLvl><Cd>SEPA</Cd></SvcLvl></PmtTpInf><ReqdExctnDt>{date}</ReqdExctnDt>"
            "<Dbtr><Nm>ACME Corp</Nm></Dbtr>"
            f"<DbtrAcct><Id><IBAN>{escape(block.debtor)}</IBAN></Id></DbtrAcct>"
            f"<DbtrAgt><FinInstnId><{bic}>BNPAFRPPXXX</{bic}></FinInstnId></DbtrAgt>"
            f"<ChrgBr>SLEV</ChrgBr>\n{txs}    </PmtInf>\n")


def _tx(tx: Tx, bic: str, new: bool) -> str:
    uetr = "<UETR>8a562c67-ca16-48ba-b074-65581be6f011</UETR>" if new else ""
    ustrd = "".join(f"<Ustrd>{escape(line)}</Ustrd>" for line in tx.ustrd)
    return (f"      <CdtTrfTxInf><PmtId><InstrId>I-{escape(tx.end_to_end)}</InstrId>"
            f"<EndToEndId>{escape(tx.end_to_end)}</EndToEndId>{uetr}</PmtId>"
            f'<Amt><InstdAmt Ccy="{tx.ccy}">{tx.amount}</InstdAmt></Amt>'
            f"<CdtrAgt><FinInstnId><{bic}>COBADEFFXXX</{bic}></FinInstnId></CdtrAgt>"
            f"<Cdtr><Nm>Supplier GmbH</Nm></Cdtr>"
            f"<CdtrAcct><Id><IBAN>{escape(tx.creditor)}</IBAN></Id></CdtrAcct>"
            f"{f'<RmtInf>{ustrd}</RmtInf>' if ustrd else ''}{tx.extra}</CdtTrfTxInf>\n")


def _opt(tag: str, value: str | None) -> str:
    return "" if value is None else f"<{tag}>{value}</{tag}>"
