"""A small standard world of participants and accounts, created over the wire."""
from contextlib import contextmanager
from pathlib import Path

from support.switch_process import SwitchProcess
from support.wire import WireClient

FUNDS = 1_000_000


def create_world(admin: WireClient, codec: str = "json") -> dict[str, str]:
    """bank-a (accounts a-funding unlimited, a-1 funded, a-2) and bank-b (b-1, b-eur).

    Returns the participants' tokens.
    """
    created = admin.call("create_participants", {"participants": [
        {"id": "bank-a", "name": "Bank A"}, {"id": "bank-b", "name": "Bank B"}]}, codec)
    tokens = {p: r["token"] for p, r in zip(("bank-a", "bank-b"), created["results"])}
    accounts = admin.call("create_accounts", {"accounts": [
        {"id": "a-funding", "participant": "bank-a", "currency": "USD", "overdraft_limit": None},
        {"id": "a-1", "participant": "bank-a", "currency": "USD"},
        {"id": "a-2", "participant": "bank-a", "currency": "USD"},
        {"id": "b-1", "participant": "bank-b", "currency": "USD"},
        {"id": "b-eur", "participant": "bank-b", "currency": "EUR"},
    ]}, codec)
    assert [r["status"] for r in accounts["results"]] == ["created"] * 5, accounts
    funded = admin.call("transfer", {"id": "fund-a-1", "debit_account": "a-funding",
                                     "credit_account": "a-1", "amount": FUNDS}, codec)
    assert funded["status"] == "created", funded
    return tokens


def balances(client: WireClient, ids, codec: str = "json") -> dict[str, int]:
    accounts = client.call("lookup_accounts", {"ids": list(ids)}, codec)["accounts"]
    return {a["id"]: a["balance"] for a in accounts}


def assert_debits_equal_credits(admin: WireClient, ids) -> None:
    accounts = admin.call("lookup_accounts", {"ids": list(ids)})["accounts"]
    assert sum(a["debits_posted"] for a in accounts) == sum(a["credits_posted"] for a in accounts)
    assert sum(a["debits_pending"] for a in accounts) == sum(a["credits_pending"] for a in accounts)


def lookup_all(client: WireClient, ids) -> dict[str, dict]:
    """The stored transfers among `ids`, by id (lookups of at most 8,190 ids each)."""
    ids, found = sorted(ids), {}
    for start in range(0, len(ids), 8190):
        chunk = client.call("lookup_transfers", {"ids": ids[start:start + 8190]}, "msgpack")
        found.update({t["id"]: t for t in chunk["transfers"]})
    return found


@contextmanager
def switch_with_world(data_dir: Path, *args: str):
    """A switch process (extra flags `args`) holding the standard world; stopped on the way out,
    also when the test fails."""
    switch = SwitchProcess(data_dir, extra_args=args).start()
    try:
        with WireClient(switch.host, switch.port) as admin:
            admin.hello("admin", switch.admin_token)
            create_world(admin)
        yield switch
    finally:
        switch.stop()
