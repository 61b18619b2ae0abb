"""Helpers for the batch end-to-end tests: a real switch, a wire client in either codec, batch
files and the calls that upload, submit, wait for and page through a batch."""
import base64
import time
from contextlib import contextmanager

from payswitch.protocol import decode_body
from support.switch_process import SwitchProcess
from support.wire import WireClient
from support.world import create_world

CSV_HEADER = "id,debit_account,credit_account,amount,currency,reference\n"
ACCOUNTS = ["a-funding", "a-1", "a-2", "b-1", "b-eur"]
# pain.001 accounts are IBANs: the debtor belongs to bank-a, the creditors to bank-b.
IBAN_DEBTOR = "FR1420041010050500013M02606"
IBAN_CREDITOR = "DE89370400440532013000"
IBAN_CREDITOR_2 = "GB29NWBK60161331926819"
IBAN_JPY_DEBTOR = "JP00BANKA0000000000001"
IBAN_JPY_CREDITOR = "JP00BANKB0000000000002"
IBAN_BHD_DEBTOR = "BH67BMAG00001299123456"
IBAN_BHD_CREDITOR = "BH02CITI00001077181611"
IBAN_FUNDS = {"EUR": 100_000_000, "JPY": 10_000_000, "BHD": 100_000_000}
IBAN_ACCOUNTS = [IBAN_DEBTOR, IBAN_CREDITOR, IBAN_CREDITOR_2, IBAN_JPY_DEBTOR, IBAN_JPY_CREDITOR,
                 IBAN_BHD_DEBTOR, IBAN_BHD_CREDITOR]
FINISHED = ("completed", "rejected")


class Session:
    """A logged-in wire client that speaks one codec and checks every reply's id and codec."""

    def __init__(self, switch: SwitchProcess, participant: str, token: str, codec: str = "json",
                 timeout_s: float = 30.0):
        self.client = WireClient(switch.host, switch.port, timeout_s=timeout_s)
        self.codec = codec
        self.participant = participant
        self.ok("hello", {"participant": participant, "token": token})

    def close(self) -> None:
        self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def ask(self, op: str, args=None) -> dict:
        return self.client.request(op, args, self.codec)

    def ok(self, op: str, args=None) -> dict:
        reply = self.ask(op, args)
        assert reply["ok"] is True, reply
        return reply["result"]

    def fail(self, op: str, args=None) -> dict:
        """The error of a request that must be refused as a whole."""
        reply = self.ask(op, args)
        assert reply["ok"] is False, reply
        return reply["error"]

    # batches

    def wire_bytes(self, data: bytes):
        """Bytes as this codec carries them in `upload_batch_part.data`."""
        return base64.b64encode(data).decode("ascii") if self.codec == "json" else data

    def wire_content(self, data: bytes):
        """`submit_batch.content`: text in JSON, bin in MessagePack."""
        return data.decode("utf-8") if self.codec == "json" else data

    def upload(self, batch_id: str, content: bytes, part_bytes: int) -> int:
        """Uploads `content` in parts of `part_bytes`, pipelined; returns the number of parts."""
        parts = [content[i:i + part_bytes] for i in range(0, len(content), part_bytes)]
        first_id = self.client.next_id
        for seq, part in enumerate(parts):
            self.client.send({"id": first_id + seq, "op": "upload_batch_part",
                              "args": {"batch_id": batch_id, "seq": seq,
                                       "data": self.wire_bytes(part)}}, self.codec)
        self.client.next_id = first_id + len(parts)
        for seq, part in enumerate(parts):
            reply, _ = decode_body(self.client.recv_body())
            assert reply["id"] == first_id + seq and reply["ok"], reply
            assert reply["result"] == {"batch_id": batch_id, "seq": seq, "bytes": len(part)}
        return len(parts)

    def submit(self, batch_id: str, fmt: str, *, content: bytes | None = None, items=None,
               count: int, total: int, mode: str = "partial") -> dict:
        args = {"batch_id": batch_id, "format": fmt, "control_count": count,
                "control_sum": total, "mode": mode}
        if content is not None:
            args["content"] = self.wire_content(content)
        if items is not None:
            args["items"] = items
        return self.ask("submit_batch", args)

    def get(self, batch_id: str) -> dict:
        return self.ok("get_batch", {"batch_id": batch_id})

    def wait(self, batch_id: str, timeout_s: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            summary = self.get(batch_id)
            if summary["state"] in FINISHED:
                return summary
            assert time.monotonic() < deadline, f"batch still {summary} after {timeout_s}s"
            time.sleep(0.02)

    def results(self, batch_id: str, limit: int = 8190) -> list[dict]:
        """Every item result, paging through get_batch_results; checks the paging itself."""
        found, offset = [], 0
        while offset is not None:
            page = self.ok("get_batch_results", {"batch_id": batch_id, "offset": offset,
                                                 "limit": limit})
            assert [r["index"] for r in page["results"]] == \
                list(range(offset, offset + len(page["results"])))
            assert len(page["results"]) == limit or page["next"] is None, page["next"]
            found += page["results"]
            offset = page["next"]
            assert offset is None or offset == len(found)
        return found

    def statuses(self, batch_id: str) -> dict[str, str]:
        return {r["id"]: r["status"] for r in self.results(batch_id)}

    def balances(self, ids) -> dict[str, int]:
        accounts = self.ok("lookup_accounts", {"ids": list(ids)})["accounts"]
        return {a["id"]: a["balance"] for a in accounts}


def csv_file(rows) -> bytes:
    """A batch CSV for rows (id, debit, credit, amount, currency, reference)."""
    lines = [CSV_HEADER] + [",".join("" if v is None else str(v) for v in row) + "\n"
                            for row in rows]
    return "".join(lines).encode("utf-8")


def create_iban_accounts(admin: Session) -> None:
    """EUR, JPY and BHD accounts named by IBANs, each debtor funded from an unlimited account."""
    accounts = []
    for currency, debtor, creditors in (("EUR", IBAN_DEBTOR, [IBAN_CREDITOR, IBAN_CREDITOR_2]),
                                        ("JPY", IBAN_JPY_DEBTOR, [IBAN_JPY_CREDITOR]),
                                        ("BHD", IBAN_BHD_DEBTOR, [IBAN_BHD_CREDITOR])):
        accounts.append({"id": f"fund-{currency}", "participant": "bank-a",
                         "currency": currency, "overdraft_limit": None})
        accounts.append({"id": debtor, "participant": "bank-a", "currency": currency})
        accounts += [{"id": c, "participant": "bank-b", "currency": currency} for c in creditors]
    result = admin.ok("create_accounts", {"accounts": accounts})
    assert {r["status"] for r in result["results"]} == {"created"}, result
    funding = [{"id": f"fund-{c}", "debit_account": f"fund-{c}", "credit_account": debtor,
                "amount": IBAN_FUNDS[c]}
               for c, debtor in (("EUR", IBAN_DEBTOR), ("JPY", IBAN_JPY_DEBTOR),
                                 ("BHD", IBAN_BHD_DEBTOR))]
    result = admin.ok("create_transfers", {"transfers": funding})
    assert {r["status"] for r in result["results"]} == {"created"}, result


@contextmanager
def running_switch(tmp_path, *extra_args, name: str = "data"):
    """A switch with the standard world; yields (switch, tokens) and stops it afterwards."""
    switch = SwitchProcess(tmp_path / name, extra_args=tuple(extra_args)).start()
    try:
        with WireClient(switch.host, switch.port) as raw:
            raw.hello("admin", switch.admin_token)
            tokens = create_world(raw)
        tokens["admin"] = switch.admin_token
        yield switch, tokens
    finally:
        switch.stop()
