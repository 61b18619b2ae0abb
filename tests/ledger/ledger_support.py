"""Builders shared by the ledger tests (normalized args as the protocol layer gives them)."""

from payswitch.switch.ledger import Ledger, LedgerError

NOW = 1_700_000_000_000_000_000
SECOND = 1_000_000_000


def tr(tid, debit=None, credit=None, amount=None, **fields):
    """A normalized transfer item: every key present."""
    item = {"id": tid, "debit_account": debit, "credit_account": credit, "amount": amount,
            "currency": None, "reference": None, "pending": False, "timeout": 0,
            "post_pending_id": None, "void_pending_id": None, "linked": False}
    assert set(fields) <= set(item), fields
    item.update(fields)
    return item


def participant(pid, name=None, caps=None):
    return {"id": pid, "name": name or pid.upper(), "net_debit_cap": caps or {},
            "token_hash": f"hash-{pid}"}


def account(aid, owner, currency="USD", limit=0):
    return {"id": aid, "participant": owner, "currency": currency, "overdraft_limit": limit}


class Env:
    """A ledger and a clock that advances 1 ms per call unless `now` is given."""

    def __init__(self, ledger=None):
        self.ledger = ledger or Ledger()
        self.now = NOW
        self.calls = []  # (caller, op, args, now) of every execute, for replays

    def ex(self, caller, op, args, now=None):
        """(result, changed) of the call, or its LedgerError raised."""
        executed = self.executed(caller, op, args, now)
        if executed.error is not None:
            raise executed.error
        return executed.result, executed.changed

    def executed(self, caller, op, args, now=None):
        """The Executed of the call, a failure included."""
        if now is None:
            self.now += 1_000_000
            now = self.now
        self.calls.append((caller, op, args, now))
        return self.ledger.execute(caller, op, args, now)

    def result(self, caller, op, args, now=None):
        return self.ex(caller, op, args, now)[0]

    def error(self, caller, op, args, now=None):
        """The code of the LedgerError the call raises."""
        try:
            self.ex(caller, op, args, now)
        except LedgerError as err:
            return err.code
        raise AssertionError(f"{op} did not raise")

    def statuses(self, caller, items, now=None):
        res = self.result(caller, "create_transfers", {"transfers": items}, now)
        return [r["status"] for r in res["results"]]

    def transfer(self, caller, item, now=None):
        """The status of one item via create_transfers."""
        return self.statuses(caller, [item], now)[0]

    def account(self, aid):
        return self.result("admin", "lookup_accounts", {"ids": [aid]})["accounts"][0]

    def balance(self, aid):
        return self.account(aid)["balance"]

    def get_transfer(self, tid):
        found = self.result("admin", "lookup_transfers", {"ids": [tid]})["transfers"]
        return found[0] if found else None


def busy_history(env):
    """A history touching every kind of state: pendings with deadlines, windows, caps."""
    env.ex("admin", "set_participant", {"id": "p2", "net_debit_cap": {"USD": 5000},
                                        "suspended": None})
    env.statuses("p1", [tr("t1", "a1", "a2", 100, reference="r1"),
                        tr("h1", "a1", "a2", 200, pending=True, timeout=3),
                        tr("h2", "a1", "a3", 50, pending=True, timeout=1),
                        tr("h3", "a1", "a3", 10, pending=True)])
    env.statuses("p2", [tr("t2", "a2", "a1", 40, linked=True),
                        tr("p1", amount=150, post_pending_id="h1", linked=True),
                        tr("t3", "a2", "a3", 1)])
    env.ex("admin", "close_window", {})
    env.statuses("admin", [tr("eur", "e2", "e1", 70), tr("bad", "a1", "a2", 10**9)])


def version_2_state(ledger):
    """The ledger's snapshot state as version 2 wrote it: one list per transfer, accounts and
    targets by id (what older snapshot files hold)."""
    rows = [[t.id, t.debit.id, t.credit.id, t.amount, t.reference, t.timeout, t.kind,
             None if t.target is None else t.target.id, t.state, t.timestamp]
            for t in ledger.book.by_id.values()]
    return dict(ledger.snapshot_state(), version=2, transfers=rows)


def standard(caps=None):
    """p1, p2, p3 with USD/EUR accounts; u1/u2 are p1's/p2's unlimited funding accounts.

    a1 holds 1000 USD cents funded from u1, a2 holds 1000 from u2; b1 is p1's second
    USD account, e1/e2 are EUR accounts.
    """
    env = Env()
    env.ex("admin", "create_participants", {"participants": [
        participant("p1", caps=(caps or {}).get("p1")),
        participant("p2", caps=(caps or {}).get("p2")),
        participant("p3", caps=(caps or {}).get("p3"))]})
    env.ex("admin", "create_accounts", {"accounts": [
        account("a1", "p1"), account("b1", "p1"), account("u1", "p1", limit=None),
        account("a2", "p2"), account("u2", "p2", limit=None), account("a3", "p3"),
        account("e1", "p1", "EUR"), account("e2", "p2", "EUR", limit=None)]})
    assert env.statuses("admin", [tr("fund1", "u1", "a1", 1000),
                                  tr("fund2", "u2", "a2", 1000)]) == ["created", "created"]
    return env
