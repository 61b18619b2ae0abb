"""The ledger against a simple reference model, driven by a hypothesis state machine.

The model keeps only participants, accounts and the list of transfers; balances,
reservations, window positions and each window's bilateral matrix are recomputed from the
transfers every time, and a linked chain is applied to a copy of the model that is kept or
dropped whole. Windows are closed at random moments, sometimes with settlement postings
(all or nothing, refused with the code of the first posting or account that fails).
"""

import copy

import msgpack
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ledger.ledger_support import NOW, SECOND, account, participant, tr, version_2_state
from payswitch.switch.ledger import Ledger, LedgerError

PARTICIPANTS = ["p1", "p2", "p3"]
CAPS = {"p1": {"USD": 400}, "p2": {"USD": 250}, "p3": {}}  # initial net debit caps
CALLERS = PARTICIPANTS + ["admin"]
# id -> (owner, currency, overdraft limit)
ACCOUNTS = {"A": ("p1", "USD", None), "B": ("p1", "USD", 0), "C": ("p2", "USD", None),
            "D": ("p2", "USD", 100), "E": ("p3", "USD", 50), "F": ("p3", "EUR", None),
            "G": ("p1", "EUR", 0), "H": ("p3", "USD", None), "I": ("p2", "EUR", None)}
NEW_ACCOUNTS = ["N1", "N2"]
ACCOUNT_IDS = list(ACCOUNTS) + NEW_ACCOUNTS + ["ZZ"]
# two ids that settlement postings of windows 1 and 2 would use: a client may take them first
TRANSFER_IDS = [f"t{i}" for i in range(12)] + ["settle:1:p1:USD", "settle:2:p2:USD"]
MOVES = ("regular", "post")
POSTED_KINDS = MOVES + ("settlement",)  # settlement postings move balances, never positions
# initial settlement accounts (a rule changes them): A and F are also hub accounts below
# (same_account), E has an overdraft limit of 50 (insufficient_funds), p2 has none in EUR
SETTLEMENT_ACCOUNTS = {"p1": {"USD": "A", "EUR": "G"}, "p2": {"USD": "D"},
                       "p3": {"USD": "E", "EUR": "F"}}
# hub settlement accounts for close_window {settle}: mostly good ones, some that are refused
HUBS = [{"USD": "H", "EUR": "I"}] * 4 + [
    {"USD": "H"}, {"USD": "H", "EUR": "F"}, {"USD": "C", "EUR": "I"}, {"USD": "A", "EUR": "I"},
    {"USD": "ZZ"}, {"EUR": "H"}]


class Model:
    def __init__(self, now):
        self.caps = copy.deepcopy(CAPS)
        self.suspended = {pid: False for pid in PARTICIPANTS}
        self.accounts = dict(ACCOUNTS)
        self.transfers = {}  # id -> dict, in commit order
        self.last_ts = 0
        self.windows = [{"opened_at": now, "closed_at": None, "settlement": None}]
        self.settlement_accounts = copy.deepcopy(SETTLEMENT_ACCOUNTS)

    def tick(self, now):
        self.last_ts = max(now, self.last_ts + 1)
        return self.last_ts

    def expire(self, now):
        for t in self.transfers.values():
            if t["kind"] == "pending" and t["state"] == "pending" and t["timeout"] \
                    and t["ts"] + t["timeout"] * SECOND <= now:
                t["state"] = "expired"

    def balances(self, aid):
        """[debits_posted, credits_posted, debits_pending, credits_pending]"""
        out = [0, 0, 0, 0]
        for t in self.transfers.values():
            held = t["kind"] == "pending" and t["state"] == "pending"
            if t["kind"] in POSTED_KINDS or held:
                if t["dr"] == aid:
                    out[0 if not held else 2] += t["amount"]
                if t["cr"] == aid:
                    out[1 if not held else 3] += t["amount"]
        return out

    def interbank(self, t):
        return self.accounts[t["dr"]][0] != self.accounts[t["cr"]][0]

    def rows(self, window):
        """Sorted [participant, currency, debits, credits] of a window with activity."""
        sums = {}
        for t in self.transfers.values():
            if t["kind"] in MOVES and t["window"] == window and self.interbank(t):
                payer, payee = self.accounts[t["dr"]][0], self.accounts[t["cr"]][0]
                sums.setdefault((payer, t["cur"]), [0, 0])[0] += t["amount"]
                sums.setdefault((payee, t["cur"]), [0, 0])[1] += t["amount"]
        return [[p, c, d, cr] for (p, c), (d, cr) in sorted(sums.items())]

    def matrix(self, window):
        """Sorted [payer, payee, currency, amount]: gross interbank money per pair."""
        sums = {}
        for t in self.transfers.values():
            if t["kind"] in MOVES and t["window"] == window and self.interbank(t):
                key = (self.accounts[t["dr"]][0], self.accounts[t["cr"]][0], t["cur"])
                sums[key] = sums.get(key, 0) + t["amount"]
        return [[p, q, c, amount] for (p, q, c), amount in sorted(sums.items())]

    def window_transfers(self, window):
        return sum(1 for t in self.transfers.values()
                   if t["kind"] in MOVES and t["window"] == window and self.interbank(t))

    def net_debit(self, pid, cur):
        window = len(self.windows)
        pos = sum(d - c for p, cc, d, c in self.rows(window) if (p, cc) == (pid, cur))
        return pos + sum(t["amount"] for t in self.transfers.values()
                         if t["kind"] == "pending" and t["state"] == "pending"
                         and self.interbank(t) and self.accounts[t["dr"]][0] == pid
                         and t["cur"] == cur)

    # -- one item, spelled out as in the brief ---------------------------------------

    def item(self, caller, it, now):
        old = self.transfers.get(it["id"])
        if old is not None:
            owners = (self.accounts[old["dr"]][0], self.accounts[old["cr"]][0], "admin")
            if caller not in owners:  # another's transfer: neither confirmed nor leaked
                own = self.accounts.get(it["debit_account"], ("",))[0] == caller
                return ("exists_with_different_fields" if own else "forbidden"), None
            return ("exists", old["ts"]) if self.same(old, it) \
                else ("exists_with_different_fields", None)
        if it["amount"] == 0:
            return "invalid_amount", None
        if it["post_pending_id"] or it["void_pending_id"]:
            return self.settle(caller, it, now)
        return self.new(caller, it, now)

    def same(self, old, it):
        amount = it["amount"]
        if amount is None and old["target"] is not None:
            amount = self.transfers[old["target"]]["amount"]
        return (given_match(it, old) and amount == old["amount"]
                and it["reference"] == old["reference"]
                and it["pending"] == (old["kind"] == "pending")
                and it["timeout"] == old["timeout"]
                and it["post_pending_id"] == (old["target"] if old["kind"] == "post" else None)
                and it["void_pending_id"] == (old["target"] if old["kind"] == "void" else None))

    def settle(self, caller, it, now):
        kind = "post" if it["post_pending_id"] else "void"
        p = self.transfers.get(it["post_pending_id"] or it["void_pending_id"])
        owners = () if p is None else (self.accounts[p["dr"]][0], self.accounts[p["cr"]][0])
        if p is None or p["kind"] != "pending" or caller not in owners + ("admin",):
            return "pending_not_found", None
        if not given_match(it, p) or (kind == "void" and it["amount"] not in (None, p["amount"])):
            return "bad_request", None
        if p["state"] != "pending":
            return {"posted": "pending_already_posted", "voided": "pending_already_voided",
                    "expired": "pending_expired"}[p["state"]], None
        amount = p["amount"] if it["amount"] is None else it["amount"]
        if amount > p["amount"]:
            return "exceeds_pending_amount", None
        p["state"] = "posted" if kind == "post" else "voided"
        return self.commit(it, kind, p["dr"], p["cr"], p["cur"], amount, p["state"], now)

    def new(self, caller, it, now):
        dr, cr = it["debit_account"], it["credit_account"]
        if dr not in self.accounts or cr not in self.accounts:
            return "account_not_found", None
        if dr == cr:
            return "same_account", None
        (payer, cur, limit), (payee, cur2, _) = self.accounts[dr], self.accounts[cr]
        if cur != cur2 or it["currency"] not in (None, cur):
            return "currency_mismatch", None
        if caller not in (payer, "admin"):
            return "forbidden", None
        if self.suspended[payer] or self.suspended[payee]:
            return "participant_suspended", None
        dp, cp, dpend, _ = self.balances(dr)
        if limit is not None and cp - dp - dpend - it["amount"] < -limit:
            return "insufficient_funds", None
        cap = self.caps[payer].get(cur)
        if payer != payee and cap is not None and self.net_debit(payer, cur) + it["amount"] > cap:
            return "net_debit_cap_exceeded", None
        kind = "pending" if it["pending"] else "regular"
        state = "pending" if it["pending"] else "posted"
        return self.commit(it, kind, dr, cr, cur, it["amount"], state, now)

    def commit(self, it, kind, dr, cr, cur, amount, state, now):
        target = it["post_pending_id"] or it["void_pending_id"]
        ts = self.tick(now)
        self.transfers[it["id"]] = {
            "id": it["id"], "dr": dr, "cr": cr, "cur": cur, "amount": amount, "kind": kind,
            "reference": it["reference"], "timeout": it["timeout"] if kind == "pending" else 0,
            "target": target, "state": state, "ts": ts, "window": len(self.windows)}
        return "created", ts

    def set_settlement_account(self, pid, cur, aid):
        """The code set_participant answers (None: success) and its effect."""
        if aid is not None:
            if aid not in self.accounts:
                return "account_not_found"
            owner, currency, _ = self.accounts[aid]
            if owner != pid:
                return "forbidden"
            if currency != cur:
                return "currency_mismatch"
            self.settlement_accounts[pid][cur] = aid
        else:
            self.settlement_accounts[pid].pop(cur, None)
        return None

    def close(self, hub, now):
        """Close the open window; with `hub` post its settlement. Returns the error code of a
        refused close (nothing changes then) or None."""
        window = len(self.windows)
        rows = self.rows(window)
        settlement = None
        if hub is not None:
            for cur, aid in sorted(hub.items()):
                if aid not in self.accounts:
                    return "account_not_found"
                if self.accounts[aid][1] != cur:
                    return "currency_mismatch"
            pay_in, pay_out, settlement = [], [], []
            for p, c, d, cr in rows:
                if d == cr:
                    continue
                own = self.settlement_accounts[p].get(c)
                if c not in hub or own is None:
                    return "account_not_found"
                tid = f"settle:{window}:{p}:{c}"
                settlement.append(tid)
                if d > cr:
                    pay_in.append((tid, own, hub[c], d - cr))
                else:
                    pay_out.append((tid, hub[c], own, cr - d))
        trial = copy.deepcopy(self)
        closed_at = trial.tick(now)
        for tid, dr, cr, amount in (pay_in + pay_out if hub is not None else []):
            if tid in trial.transfers:
                return "exists_with_different_fields"
            if dr == cr:
                return "same_account"
            dp, cp, dpend, _ = trial.balances(dr)
            limit = trial.accounts[dr][2]
            if limit is not None and cp - dp - dpend - amount < -limit:
                return "insufficient_funds"
            trial.commit({"id": tid, "reference": f"settlement of window {window}",
                          "timeout": 0, "post_pending_id": None, "void_pending_id": None},
                         "settlement", dr, cr, trial.accounts[dr][1], amount, "posted", now)
        self.__dict__.update(trial.__dict__)
        self.windows[-1].update(closed_at=closed_at, settlement=settlement)
        self.windows.append({"opened_at": closed_at, "closed_at": None, "settlement": None})
        return None

    def batch(self, caller, items, now):
        """Statuses and timestamps of create_transfers, chains applied all or nothing."""
        out = []
        i = 0
        while i < len(items):
            j = i
            while j < len(items) and items[j]["linked"]:
                j += 1
            if j == len(items):  # chain still open at the end
                out += [("linked_event_failed", None)] * (j - i - 1)
                out.append(("linked_event_chain_open", None))
                break
            trial = copy.deepcopy(self)
            results = []
            for it in items[i:j + 1]:
                status, ts = trial.item(caller, it, now)
                if ts is None:
                    break
                results.append((status, ts))
            if len(results) == j - i + 1:
                self.__dict__.update(trial.__dict__)
                out += results
            else:
                failed = [("linked_event_failed", None)] * (j - i + 1)
                failed[len(results)] = (status, None)
                out += failed
            i = j + 1
        return out


def pick(draw, usual, rare, one_in=6):
    """Mostly one of `usual`, one time in `one_in` one of `rare`."""
    return draw(st.sampled_from(rare if draw(st.integers(1, one_in)) == 1 else usual))


def given_match(it, t):
    """Accounts and currency an item gives (None: derived) equal those of model transfer t."""
    return (it["debit_account"] in (None, t["dr"]) and it["credit_account"] in (None, t["cr"])
            and it["currency"] in (None, t["cur"]))


@st.composite
def transfer_items(draw, caller, model, sent):
    """A few normalized items, mostly ones that can succeed, some sent before."""
    own = [aid for aid, (owner, _, _) in model.accounts.items() if caller in (owner, "admin")]
    visible = [tid for tid, t in model.transfers.items() if t["kind"] == "pending"
               and caller in ("admin", model.accounts[t["dr"]][0], model.accounts[t["cr"]][0])]
    pendings = [tid for tid in visible if model.transfers[tid]["state"] == "pending"]
    count = draw(st.integers(1, 4))
    items = []
    for n in range(count):
        linked = n < count - 1 and pick(draw, [False], [True], 3) or pick(draw, [False], [True], 20)
        if sent and pick(draw, [False], [True], 5):
            items.append(dict(draw(st.sampled_from(sent)), linked=linked))
            continue
        kind = pick(draw, ["regular", "regular", "pending", "post", "void"]
                    if pendings else ["regular", "pending"], ["post", "void"])
        tid = pick(draw, [t for t in TRANSFER_IDS if t not in model.transfers] or TRANSFER_IDS,
                   TRANSFER_IDS)
        debit = pick(draw, own or ACCOUNT_IDS, ACCOUNT_IDS)
        alike = [aid for aid, acc in model.accounts.items() if aid != debit
                 and debit in model.accounts and acc[1] == model.accounts[debit][1]]
        credit = pick(draw, alike or ACCOUNT_IDS, ACCOUNT_IDS)
        amount = pick(draw, [1, 5, 20, 60, 150, 300], [0, 1000])
        fields = {"currency": pick(draw, [None], ["USD", "EUR"]),
                  "reference": draw(st.sampled_from([None, "r"])),
                  "linked": linked}
        if kind in ("post", "void"):
            target = pick(draw, pendings or visible or TRANSFER_IDS, visible or TRANSFER_IDS, 3)
            target = pick(draw, [target], TRANSFER_IDS, 8)
            known = model.transfers.get(target)
            accounts = pick(draw, ["omit", "copy"], ["drawn"])
            if accounts == "omit" or (accounts == "copy" and known is None):
                debit = credit = None
                fields["currency"] = None
            elif accounts == "copy":
                debit, credit = known["dr"], known["cr"]
            base = known["amount"] if known else amount
            amount = pick(draw, [None], [amount, max(base - 1, 1), base, base + 1], 3)
            fields[f"{kind}_pending_id"] = target
        elif kind == "pending":
            fields.update(pending=True, timeout=draw(st.integers(0, 3)))
        items.append(tr(tid, debit, credit, amount, **fields))
    return items


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.ledger = Ledger()
        self.now = NOW
        self.calls = []
        self.sent = []  # transfer items sent so far, to send again
        self.run("admin", "create_participants",
                 {"participants": [participant(pid, caps=CAPS[pid]) for pid in PARTICIPANTS]})
        self.run("admin", "create_accounts", {"accounts": [
            account(aid, owner, cur, limit) for aid, (owner, cur, limit) in ACCOUNTS.items()]})
        for pid, accounts in SETTLEMENT_ACCOUNTS.items():
            self.run("admin", "set_participant", {"id": pid, "net_debit_cap": None,
                                                  "suspended": None,
                                                  "settlement_accounts": accounts})
        self.model = Model(NOW)
        self.model.last_ts = self.ledger.snapshot_state()["last_ts"]

    def run(self, caller, op, args):
        """(result, changed) of the call, or its LedgerError raised."""
        self.calls.append((caller, op, args, self.now))
        executed = self.ledger.execute(caller, op, args, self.now)
        if executed.error is not None:
            raise executed.error
        return executed.result, executed.changed

    @rule(step=st.sampled_from([0, 0, 1, 1000, SECOND // 2, SECOND, 2 * SECOND]))
    def advance(self, step):
        self.now += step

    @rule(caller=st.sampled_from(CALLERS), data=st.data())
    def create_transfers(self, caller, data):
        items = data.draw(transfer_items(caller, self.model, self.sent))
        self.sent += items
        self.model.expire(self.now)
        expected = self.model.batch(caller, items, self.now)
        res, changed = self.run(caller, "create_transfers", {"transfers": items})
        got = [(r["status"], r["timestamp"]) for r in res["results"]]
        assert got == expected, items
        if any(status == "created" for status, _ in expected):
            assert changed

    @rule(caller=st.sampled_from(CALLERS), data=st.data())
    def single_transfer(self, caller, data):
        item = data.draw(transfer_items(caller, self.model, self.sent))[-1]
        self.sent.append(item)
        self.model.expire(self.now)
        expected = self.model.batch(caller, [item], self.now)[0]
        try:
            res, _ = self.run(caller, "transfer", item)
            got = (res["status"], res["timestamp"])
        except LedgerError as err:
            got = (err.code, None)
        assert got == expected, item

    @rule()
    def expire_pending(self):
        self.model.expire(self.now)
        self.run("admin", "expire_pending", {})

    @rule(caller=st.sampled_from(CALLERS), aid=st.sampled_from(NEW_ACCOUNTS),
          owner=st.sampled_from(PARTICIPANTS + ["ghost"]), cur=st.sampled_from(["USD", "EUR"]),
          limit=st.sampled_from([None, 0, 50]))
    def create_account(self, caller, aid, owner, cur, limit):
        self.model.expire(self.now)
        res, _ = self.run(caller, "create_accounts",
                          {"accounts": [account(aid, owner, cur, limit)]})
        if caller not in (owner, "admin"):
            expected = "forbidden"
        elif owner == "ghost":
            expected = "participant_not_found"
        elif aid in self.model.accounts:
            expected = "exists" if self.model.accounts[aid] == (owner, cur, limit) \
                else "account_exists"
        else:
            expected = "created"
            self.model.accounts[aid] = (owner, cur, limit)
            self.model.tick(self.now)
        assert res["results"][0]["status"] == expected

    @rule(pid=st.sampled_from(PARTICIPANTS),
          cap=st.sampled_from([None, 0, 100, 300, 600]),
          suspended=st.sampled_from([None, None, False, False, False, True]))
    def set_participant(self, pid, cap, suspended):
        self.model.expire(self.now)
        self.run("admin", "set_participant",
                 {"id": pid, "net_debit_cap": {"USD": cap}, "suspended": suspended})
        if cap is None:
            self.model.caps[pid].pop("USD", None)
        else:
            self.model.caps[pid]["USD"] = cap
        if suspended is not None:
            self.model.suspended[pid] = suspended

    @rule(pid=st.sampled_from(PARTICIPANTS), cur=st.sampled_from(["USD", "EUR"]),
          aid=st.sampled_from(list(ACCOUNTS) + ["ZZ", None]))
    def set_settlement_account(self, pid, cur, aid):
        self.model.expire(self.now)
        expected = self.model.set_settlement_account(pid, cur, aid)
        args = {"id": pid, "net_debit_cap": None, "suspended": None,
                "settlement_accounts": {cur: aid}}
        try:
            res, _ = self.run("admin", "set_participant", args)
        except LedgerError as err:
            assert err.code == expected
        else:
            assert expected is None
            assert res["settlement_accounts"] == self.model.settlement_accounts[pid]

    @rule(hub=st.sampled_from([None, None] + HUBS))
    def close_window(self, hub):
        self.model.expire(self.now)
        model = self.model
        window = len(model.windows)
        rows = model.rows(window)
        matrix = model.matrix(window)
        count = model.window_transfers(window)
        self.run("admin", "expire_pending", {})  # as the server does, in a step of its own
        before = self.ledger.snapshot_state()
        code = model.close(hub, self.now)
        args = {} if hub is None else {"settle": {"hub_accounts": hub}}
        try:
            report, _ = self.run("admin", "close_window", args)
        except LedgerError as err:
            assert err.code == code, (err.code, code)
            assert self.ledger.snapshot_state() == before  # a refused close changes nothing
            return
        assert code is None, code
        closed = model.windows[window - 1]
        assert report["window_id"] == window and report["closed_at"] == closed["closed_at"]
        assert report["opened_at"] == closed["opened_at"]
        assert report["transfers"] == count
        assert [[p["participant"], p["currency"], p["debits"], p["credits"]]
                for p in report["positions"]] == rows
        assert report["settlement_transfers"] == closed["settlement"]
        got = self.ledger.execute("admin", "get_window_matrix", {"window_id": window},
                                  self.now).result
        assert [[r["payer"], r["payee"], r["currency"], r["amount"]] for r in got["rows"]] \
            == matrix

    @rule(layout=st.sampled_from(["columns", "version 2 rows"]))
    def restore_from_snapshot(self, layout):
        saved = (self.ledger.snapshot_state() if layout == "columns"
                 else version_2_state(self.ledger))
        state = msgpack.unpackb(msgpack.packb(saved), strict_map_key=False)
        self.ledger = Ledger.from_snapshot_state(state)

    @precondition(lambda self: len(self.calls) > 2)
    @rule()
    def replay_gives_the_same_state(self):
        replayed = Ledger()
        for caller, op, args, now in self.calls:
            replayed.execute(caller, op, args, now)
        assert replayed.snapshot_state() == self.ledger.snapshot_state()

    @invariant()
    def ledger_matches_model(self):
        self.ledger.check_invariants()
        accounts = self.ledger.execute("admin", "lookup_accounts",
                                       {"ids": list(self.model.accounts)}, self.now).result
        for rec in accounts["accounts"]:
            dp, cp, dpend, cpend = self.model.balances(rec["id"])
            assert [rec["debits_posted"], rec["credits_posted"], rec["debits_pending"],
                    rec["credits_pending"]] == [dp, cp, dpend, cpend], rec["id"]
            assert rec["available"] == cp - dp - dpend
        assert len(accounts["accounts"]) == len(self.model.accounts)

    @invariant()
    def windows_match_model(self):
        model = self.model
        listing = self.ledger.execute("admin", "list_windows", {}, self.now).result["windows"]
        assert [(w["opened_at"], w["closed_at"]) for w in listing] \
            == [(w["opened_at"], w["closed_at"]) for w in model.windows]
        for number in range(1, len(model.windows) + 1):
            report = self.ledger.execute("admin", "get_window", {"window_id": number},
                                         self.now).result
            rows = model.rows(number)
            assert [[p["participant"], p["currency"], p["debits"], p["credits"]]
                    for p in report["positions"]] == rows
            for cur in {row[1] for row in rows}:
                assert sum(p["net"] for p in report["positions"] if p["currency"] == cur) == 0
            assert report["instructions"] == [
                {"participant": p, "currency": c, "pay" if d > cr else "receive": abs(cr - d)}
                for p, c, d, cr in rows if d != cr]
            assert report["settlement_transfers"] == model.windows[number - 1]["settlement"]
            matrix = model.matrix(number)
            got = self.ledger.execute("admin", "get_window_matrix", {"window_id": number},
                                      self.now).result
            assert got["window_id"] == number and got["state"] == report["state"]
            assert [[r["payer"], r["payee"], r["currency"], r["amount"]]
                    for r in got["rows"]] == matrix
            for pid in PARTICIPANTS:  # a participant sees its own rows only
                own = self.ledger.execute(pid, "get_window", {"window_id": number},
                                          self.now).result
                assert own["positions"] == [p for p in report["positions"]
                                            if p["participant"] == pid]
                seen = self.ledger.execute(pid, "get_window_matrix", {"window_id": number},
                                           self.now).result["rows"]
                assert seen == [r for r in got["rows"] if pid in (r["payer"], r["payee"])]

    @invariant()
    def transfers_match_model(self):
        ids = sorted(set(TRANSFER_IDS) | set(self.model.transfers))
        found = self.ledger.execute("admin", "lookup_transfers",
                                    {"ids": ids}, self.now).result["transfers"]
        got = {t["id"]: (t["state"], t["amount"], t["timestamp"]) for t in found}
        assert got == {tid: (t["state"], t["amount"], t["ts"])
                       for tid, t in self.model.transfers.items()}


LedgerMachine.TestCase.settings = settings(
    max_examples=300, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
test_ledger_against_model = LedgerMachine.TestCase
