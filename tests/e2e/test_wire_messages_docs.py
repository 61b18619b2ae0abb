"""Every error message quoted in docs/protocol.md is what the switch sends, word for word: the
documented requests are made on a real switch and every message of their replies is collected."""
import json
import re
from pathlib import Path

from support.wire import WireClient

PROTOCOL_MD = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
MESSAGE = re.compile(r'"message": ("(?:[^"\\]|\\.)*")')


def documented_messages() -> set[str]:
    return {json.loads(quoted) for quoted in MESSAGE.findall(PROTOCOL_MD.read_text())}


class Recorder:
    """A wire client that keeps every error and item message it is sent."""

    def __init__(self, client: WireClient):
        self.client = client
        self.messages: set[str] = set()

    def ask(self, op: str, args: dict) -> dict:
        reply = self.client.request(op, args)
        if not reply["ok"]:
            self.messages.add(reply["error"]["message"])
        elif type(reply["result"]) is dict:
            self.messages.update(r["message"] for r in reply["result"].get("results", [])
                                 if "message" in r)
        return reply


def tx(tid: str, debit: str, credit: str, amount, **extra) -> dict:
    return {"id": tid, "debit_account": debit, "credit_account": credit, "amount": amount,
            **extra}


def test_every_message_quoted_in_the_protocol_guide_is_sent_by_the_switch(switch):
    documented = documented_messages()
    assert len(documented) >= 11, documented  # the pattern still finds the examples
    with WireClient(switch.host, switch.port) as admin_client, \
            WireClient(switch.host, switch.port) as bank_client:
        admin_client.hello("admin", switch.admin_token)
        admin = Recorder(admin_client)
        tokens = [r["token"] for r in admin.ask("create_participants", {"participants": [
            {"id": "bank-a", "name": "Bank A"}, {"id": "bank-b", "name": "Bank B"}]}
        )["result"]["results"]]
        # The guide's examples, in an order that gives them the state they describe.
        admin.ask("create_accounts", {"accounts": [
            {"id": "FUND", "participant": "bank-a", "currency": "USD"},
            {"id": "SOURCE", "participant": "bank-a", "currency": "USD", "overdraft_limit": None}]})
        admin.ask("create_accounts", {"accounts": [
            {"id": "A", "participant": "bank-a", "currency": "USD"},
            {"id": "B", "participant": "bank-b", "currency": "USD"},
            {"id": "FUND", "participant": "bank-a", "currency": "USD", "overdraft_limit": None}]})
        admin.ask("create_participants", {"participants": [{"id": "bank-a", "name": "Bank A2"}]})
        admin.ask("transfer", tx("tx-1", "A", "B", 100))  # A is empty yet
        admin.ask("transfer", tx("fund-A", "SOURCE", "A", 5000))
        admin.ask("create_transfers", {"transfers": [
            tx("tx-1", "A", "B", 1500, currency="USD", reference="invoice 42"),
            tx("tx-2", "A", "B", 99999999, linked=True), tx("tx-3", "A", "B", 1)]})
        admin.ask("create_transfers", {"transfers": [
            tx("tx-1", "A", "B", 1600, currency="USD", reference="invoice 42"),
            tx("tx-5", "A", "B", 1.5), tx("tx-6", "A", "B", "100")]})
        admin.ask("transfer", tx("hold-1", "A", "B", 500, pending=True, timeout=3600))
        admin.ask("transfer", {"id": "post-1", "post_pending_id": "hold-1", "amount": 300})
        admin.ask("transfer", {"id": "void-1", "void_pending_id": "hold-1"})
        admin.ask("create_transfers", {"transfers": [
            tx("tx-7", "A", "B", 1), tx("tx-8", "A", "B", 1, currency="QQQ")]})
        bank_client.hello("bank-a", tokens[0])
        bank = Recorder(bank_client)
        bank.ask("create_transfers", {"transfers": [tx("tx-4", "B", "A", 10)]})
        sent = admin.messages | bank.messages
    missing = documented - sent
    assert not missing, f"documented but never sent: {missing}\nsent: {sorted(sent)}"
