"""A settlement world over the wire, and an independent computation of window reports.

The independent side knows only transfers (as `get_account_transfers` lists them) and window
boundaries: a window holds the interbank one-phase transfers and posts whose timestamps fall in
[opened_at, closed_at). It shares no code with the switch.
"""
import subprocess
import sys
from pathlib import Path

from support.wire import WireClient

BANKS = ["bank-a", "bank-b", "bank-c", "bank-d"]
HUB_ACCOUNTS = {"USD": "hub-usd", "EUR": "hub-eur"}
ROOT = Path(__file__).resolve().parents[2]


def ok(client: WireClient, op: str, args=None) -> dict:
    reply = client.request(op, args)
    assert reply["ok"], (op, args, reply)
    return reply["result"]


def fail(client: WireClient, op: str, args=None) -> str:
    reply = client.request(op, args)
    assert not reply["ok"], (op, args, reply)
    return reply["error"]["code"]


def tx(tid, debit, credit, amount, **extra) -> dict:
    return {"id": tid, "debit_account": debit, "credit_account": credit, "amount": amount,
            **extra}


def create_settlement_world(admin: WireClient, banks=BANKS, caps=None) -> dict[str, str]:
    """Each bank: `<bank>-1` and `<bank>-2` (USD, unlimited overdraft, for traffic),
    `<bank>-eur` (EUR, unlimited) and settlement accounts `<bank>-settle` (USD) and
    `<bank>-settle-eur`, registered with set_participant. The hub participant owns `hub-usd` and
    `hub-eur`. Returns the banks' tokens."""
    caps = caps or {}
    created = ok(admin, "create_participants", {"participants": [
        {"id": p, "name": p.upper(), **({"net_debit_cap": caps[p]} if p in caps else {})}
        for p in [*banks, "hub"]]})
    tokens = {p: r["token"] for p, r in zip(banks, created["results"])}
    accounts = [{"id": aid, "participant": "hub", "currency": cur, "overdraft_limit": None}
                for cur, aid in HUB_ACCOUNTS.items()]
    for p in banks:
        accounts += [
            {"id": f"{p}-1", "participant": p, "currency": "USD", "overdraft_limit": None},
            {"id": f"{p}-2", "participant": p, "currency": "USD", "overdraft_limit": None},
            {"id": f"{p}-eur", "participant": p, "currency": "EUR", "overdraft_limit": None},
            {"id": f"{p}-settle", "participant": p, "currency": "USD", "overdraft_limit": None},
            {"id": f"{p}-settle-eur", "participant": p, "currency": "EUR",
             "overdraft_limit": None}]
    result = ok(admin, "create_accounts", {"accounts": accounts})
    assert {r["status"] for r in result["results"]} == {"created"}, result
    for p in banks:
        ok(admin, "set_participant", {"id": p, "settlement_accounts": {
            "USD": f"{p}-settle", "EUR": f"{p}-settle-eur"}})
    return tokens


def traffic_accounts(banks=BANKS) -> list[str]:
    return [f"{p}-{n}" for p in banks for n in ("1", "2", "eur")]


def all_transfers(client: WireClient, accounts) -> dict[str, dict]:
    """Every transfer touching `accounts`, by id, paging through get_account_transfers."""
    found = {}
    for aid in accounts:
        after = None
        while True:
            args = {"account": aid, "limit": 8190}
            if after is not None:
                args["after"] = after
            page = ok(client, "get_account_transfers", args)
            for t in page["transfers"]:
                found[t["id"]] = t
            after = page["next"]
            if after is None:
                break
    return found


def owner_of(account: str) -> str:
    """The participant owning an account of create_settlement_world (by its name)."""
    if account.startswith("hub-"):
        return "hub"
    return next(p for p in BANKS if account.startswith(p + "-"))


def independent_reports(transfers: dict[str, dict], windows: list[dict]) -> dict:
    """window_id -> {"positions": {(p, cur): [debits, credits]}, "matrix": {(payer, payee,
    cur): amount}, "transfers": count}, from the transfers alone."""
    out = {w["window_id"]: {"positions": {}, "matrix": {}, "transfers": 0} for w in windows}
    for t in transfers.values():
        if t["pending"] or t["void_pending_id"] is not None or t["id"].startswith("settle:"):
            continue  # reservations and voids move nothing; settlement postings are exempt
        payer, payee = owner_of(t["debit_account"]), owner_of(t["credit_account"])
        if payer == payee:
            continue
        ts = t["timestamp"]
        [w] = [w for w in windows if w["opened_at"] <= ts
               and (w["closed_at"] is None or ts < w["closed_at"])]
        report = out[w["window_id"]]
        cur = t["currency"]
        report["positions"].setdefault((payer, cur), [0, 0])[0] += t["amount"]
        report["positions"].setdefault((payee, cur), [0, 0])[1] += t["amount"]
        key = (payer, payee, cur)
        report["matrix"][key] = report["matrix"].get(key, 0) + t["amount"]
        report["transfers"] += 1
    return out


def as_computed(report: dict, matrix: dict) -> dict:
    """A switch report and matrix in the shape of `independent_reports`."""
    return {"positions": {(p["participant"], p["currency"]): [p["debits"], p["credits"]]
                          for p in report["positions"]},
            "matrix": {(r["payer"], r["payee"], r["currency"]): r["amount"]
                       for r in matrix["rows"]},
            "transfers": report["transfers"]}


def check_report_shape(report: dict) -> None:
    """Nets sum to zero per currency; instructions follow the nets."""
    sums = {}
    for p in report["positions"]:
        assert p["net"] == p["credits"] - p["debits"]
        sums[p["currency"]] = sums.get(p["currency"], 0) + p["net"]
    assert all(v == 0 for v in sums.values()), sums
    expected = [{"participant": p["participant"], "currency": p["currency"],
                 **({"pay": -p["net"]} if p["net"] < 0 else {"receive": p["net"]})}
                for p in report["positions"] if p["net"]]
    assert report["instructions"] == expected


def run_cli(module: str, *argv: str, env=None, timeout_s: float = 60.0):
    """`python -m <module> argv...` from the repository root: (exit code, stdout, stderr)."""
    import os
    result = subprocess.run([sys.executable, "-m", module, *argv], capture_output=True,
                            text=True, timeout=timeout_s, cwd=ROOT,
                            env={**os.environ, **(env or {})})
    return result.returncode, result.stdout, result.stderr
