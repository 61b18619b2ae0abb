"""Crash loops: mixed load from several threads (single transfers, create_transfers with linked
chains, two-phase pending then post/void, CSV partial and JSON atomic batch files, window
closes), SIGKILL at a random (seeded) moment, restart, verify everything ever acknowledged, repeat.

After every kill the data directory must pass `wal verify` (a torn tail is allowed, damage is
not). Checked after every restart, over everything acknowledged in all rounds so far:
- every acknowledged transfer is there with the fields it was sent with and its timestamp; an
  acknowledged post or void left its pending transfer posted or voided;
- no transfer appears twice: each account's history lists every transfer once, and each transfer
  appears in the histories of exactly its two accounts;
- each account's posted and pending debits and credits equal the sum of its stored transfers,
  and debits equal credits over all accounts (posted and pending);
- every batch finishes (a partial one resumes where it stopped): its counts add up, each item
  has one result, an atomic batch is all or nothing, a partial batch has exactly its bad row
  failed and every good row stored;
- every window report's nets sum to zero per currency, and an acknowledged close_window report
  reads back unchanged.

The default suite runs CRASH_ROUNDS_DEFAULT rounds; `./scripts/test -m soak -k crash_loop` runs
CRASH_ROUNDS (default 300). CRASH_SEED fixes the random choices (printed when a round fails).
"""
import os
import random
import threading
import time
from dataclasses import dataclass, field

import pytest

from support.switch_process import SwitchProcess
from support.wire import WireClient
from support.world import create_world, lookup_all

from hardening.fault_support import ACCOUNTS
from payswitch.switch.storage.verify import format_report, verify as verify_data_dir

CRASH_ROUNDS_DEFAULT = 3
SERVE_ARGS = ("--wal-segment-bytes", "65536", "--snapshot-every-bytes", "196608")
RECORD_FIELDS = ("debit_account", "credit_account", "amount", "reference", "pending", "timeout",
                 "post_pending_id", "void_pending_id")
FUNDING, EMPTY = "a-funding", "a-2"  # unlimited overdraft; never credited, so debits fail
CSV_HEADER = "id,debit_account,credit_account,amount,currency,reference\n"


@dataclass
class Acked:
    """What the switch acknowledged, merged from every worker of every round."""
    transfers: dict = field(default_factory=dict)  # id -> (expected fields, timestamp)
    settled: dict = field(default_factory=dict)  # pending id -> "posted" | "voided"
    batches: dict = field(default_factory=dict)  # batch id -> (mode, [(item id, good)])
    windows: dict = field(default_factory=dict)  # window id -> acknowledged report
    replies: int = 0

    def merge(self, other: "Acked") -> None:
        self.transfers.update(other.transfers)
        self.settled.update(other.settled)
        self.batches.update(other.batches)
        self.windows.update(other.windows)
        self.replies += other.replies


class Worker(threading.Thread):
    """One connection, one kind of load, until the switch is killed."""

    def __init__(self, switch, kind: str, prefix: str, seed: int):
        super().__init__(daemon=True)
        self.client = WireClient(switch.host, switch.port, timeout_s=30)
        self.client.hello("admin", switch.admin_token)
        self.kind, self.prefix, self.rng = kind, prefix, random.Random(seed)
        self.acked = Acked()
        self.error: BaseException | None = None
        self.counter = 0
        self.big_batch_acked = threading.Event()  # a batch of many apply chunks is running

    def new_id(self, tag: str) -> str:
        self.counter += 1
        return f"{self.prefix}-{tag}{self.counter}"

    def run(self) -> None:
        step = getattr(self, "step_" + self.kind)
        try:
            while True:
                step()
        except (ConnectionError, OSError):
            pass  # killed: everything acknowledged so far must survive
        except BaseException as error:
            self.error = error
        finally:
            self.client.close()

    def call(self, op: str, args) -> dict:
        reply = self.client.request(op, args, self.rng.choice(("json", "msgpack")))
        self.acked.replies += 1
        return reply

    def ack_transfer(self, item: dict, timestamp: int) -> None:
        expected = {k: item[k] for k in RECORD_FIELDS if item.get(k) is not None}
        self.acked.transfers[item["id"]] = (expected, timestamp)

    def plain_item(self, tag: str) -> dict:
        return {"id": self.new_id(tag), "debit_account": FUNDING,
                "credit_account": self.rng.choice(("b-1", "a-1")),
                "amount": self.rng.randint(1, 9), "reference": f"r{self.counter}"}

    def step_single(self) -> None:
        """Pipelined single transfers."""
        items = [self.plain_item("s") for _ in range(8)]
        for n, item in enumerate(items):
            self.client.send({"id": n, "op": "transfer", "args": item},
                             "msgpack" if n % 2 else "json")
        for n, item in enumerate(items):
            reply = self.client.recv()
            self.acked.replies += 1
            assert reply["id"] == n and reply["ok"], reply
            assert reply["result"]["status"] == "created", reply
            self.ack_transfer(item, reply["result"]["timestamp"])

    def step_batched(self) -> None:
        """create_transfers: plain items and a linked chain that fails as a whole."""
        items = [self.plain_item("c") for _ in range(self.rng.randint(1, 6))]
        chain = [{**self.plain_item("l"), "linked": True},
                 {**self.plain_item("l"), "debit_account": EMPTY}]
        position = self.rng.randint(0, len(items))
        items[position:position] = chain
        reply = self.call("create_transfers", {"transfers": items})
        assert reply["ok"], reply
        statuses = [r["status"] for r in reply["result"]["results"]]
        expected = ["created"] * len(items)
        expected[position:position + 2] = ["linked_event_failed", "insufficient_funds"]
        assert statuses == expected, (statuses, items)
        for item, result in zip(items, reply["result"]["results"]):
            if result["status"] == "created":
                self.ack_transfer(item, result["timestamp"])

    def step_two_phase(self) -> None:
        """A pending transfer, then (mostly) a post in full or in part, or a void; some are left
        pending, some with a 1 s timeout so they expire across crashes."""
        pending = {**self.plain_item("p"), "pending": True,
                   "timeout": self.rng.choice((0, 0, 0, 1))}
        reply = self.call("transfer", pending)
        assert reply["ok"], reply
        self.ack_transfer(pending, reply["result"]["timestamp"])
        choice = self.rng.random()
        if choice < 0.4:
            settle = {"id": self.new_id("post"), "post_pending_id": pending["id"]}
            if self.rng.random() < 0.5:
                settle["amount"] = self.rng.randint(1, pending["amount"])
            outcome = "posted"
        elif choice < 0.75:
            settle, outcome = {"id": self.new_id("void"), "void_pending_id": pending["id"]}, \
                "voided"
        else:
            return
        reply = self.call("transfer", settle)
        if reply["ok"]:
            self.ack_transfer(settle, reply["result"]["timestamp"])
            self.acked.settled[pending["id"]] = outcome
        else:  # only a 1 s timeout may beat us to it
            assert reply["error"]["code"] == "pending_expired" and pending["timeout"], reply

    def step_batches(self) -> None:
        """A CSV partial batch (one bad row; sometimes over several apply chunks) or a small
        JSON atomic batch (sometimes with a failing item: then nothing of it may exist)."""
        batch_id = self.new_id("batch")
        if self.rng.random() < 0.5:
            rows = self.rng.choice((6, 40, 1100, 4000))
            items = [(self.new_id("bc"), FUNDING, "b-1", self.rng.randint(1, 9))
                     for _ in range(rows)]
            bad = self.rng.randrange(rows)
            items[bad] = (items[bad][0], EMPTY, "b-1", 5)
            content = CSV_HEADER + "".join(f"{i},{d},{c},{a},USD,csv\n" for i, d, c, a in items)
            args = {"batch_id": batch_id, "format": "csv", "content": content, "mode": "partial"}
            mode = "partial"
        else:
            failing = self.rng.random() < 0.5
            items = [(self.new_id("ba"), FUNDING, "b-1", self.rng.randint(1, 9))
                     for _ in range(5)]
            if failing:
                items[-1] = (items[-1][0], EMPTY, "b-1", 5)
            args = {"batch_id": batch_id, "format": "json", "mode": "atomic", "items": [
                {"id": i, "debit_account": d, "credit_account": c, "amount": a,
                 "currency": "USD"} for i, d, c, a in items]}
            mode = "atomic"
        args |= {"control_count": len(items), "control_sum": sum(i[3] for i in items)}
        reply = self.call("submit_batch", args)
        assert reply["ok"] and reply["result"]["state"] == "received", reply
        self.acked.batches[batch_id] = (mode, [(i, d != EMPTY) for i, d, _, _ in items])
        if len(items) >= 1100:
            self.big_batch_acked.set()
        time.sleep(self.rng.uniform(0, 0.05))

    def step_windows(self) -> None:
        """Closes the settlement window now and then, while the others keep transferring."""
        time.sleep(self.rng.uniform(0.05, 0.25))
        reply = self.call("close_window", {})
        assert reply["ok"], reply
        self.acked.windows[reply["result"]["window_id"]] = reply["result"]


KINDS = ("single", "single", "batched", "two_phase", "two_phase", "batches", "windows")


def run_round(switch: SwitchProcess, round_number: int, rng: random.Random) -> Acked:
    workers = [Worker(switch, kind, f"r{round_number}w{n}", rng.randrange(1 << 30))
               for n, kind in enumerate(KINDS)]
    for worker in workers:
        worker.start()
    moment = rng.random()
    if moment < 0.1:  # right after start: recovery's own steps, the first requests
        time.sleep(rng.uniform(0.0, 0.1))
    elif moment < 0.4:  # while a big batch is being parsed or applied chunk by chunk
        workers[KINDS.index("batches")].big_batch_acked.wait(3.0)
        time.sleep(rng.uniform(0.0, 0.04))
    else:
        time.sleep(rng.uniform(0.15, 1.2))
    switch.kill()
    acked = Acked()
    for worker in workers:
        worker.join(30)
        assert not worker.is_alive(), f"{worker.kind} worker hangs after the kill"
        assert worker.error is None, f"{worker.kind} worker: {worker.error!r}"
        acked.merge(worker.acked)
    return acked


def all_pages(admin: WireClient, op: str, args: dict, key: str, cursor: str) -> list:
    found, position = [], None
    while True:
        page = admin.call(op, {**args, cursor: position} if position is not None else args,
                          "msgpack")
        found += page[key]
        if page["next"] is None:
            return found
        position = page["next"]


def wait_for_batches(admin: WireClient, batches: dict, timeout_s: float = 30.0) -> dict:
    deadline, summaries = time.monotonic() + timeout_s, {}
    for batch_id in batches:
        while True:
            summary = admin.call("get_batch", {"batch_id": batch_id})
            if summary["state"] in ("completed", "rejected"):
                summaries[batch_id] = summary
                break
            assert time.monotonic() < deadline, f"batch {batch_id} never finished: {summary}"
            time.sleep(0.02)
    return summaries


def account_histories(admin: WireClient) -> dict[str, list[dict]]:
    return {account: all_pages(admin, "get_account_transfers",
                               {"account": account, "limit": 8190}, "transfers", "after")
            for account in ACCOUNTS}


def settled_histories(admin: WireClient, deadline_s: float) -> dict[str, list[dict]]:
    """Account histories once no pending transfer with a timeout is left to expire, so the
    balances read next cannot change under the check."""
    while True:
        histories = account_histories(admin)
        waiting = [t for ts in histories.values() for t in ts
                   if t["state"] == "pending" and t["timeout"]]
        if not waiting:
            return histories
        assert time.monotonic() < deadline_s, f"pending transfers never expired: {waiting[:3]}"
        time.sleep(0.1)


def verify(switch: SwitchProcess, acked: Acked) -> dict:
    with WireClient(switch.host, switch.port, timeout_s=60) as admin:
        admin.hello("admin", switch.admin_token)
        summaries = wait_for_batches(admin, acked.batches)
        # batches the kill caught mid-way: the restarted switch finished them
        since_restart = switch.log().rsplit('"event": "recovery_complete"', 1)[-1]
        unfinished = since_restart.count('"event": "batch_completed"') + \
            since_restart.count('"event": "batch_rejected"')
        histories = settled_histories(admin, time.monotonic() + 30)
        found = lookup_all(admin, acked.transfers)

        # nothing acknowledged lost or altered
        for transfer_id, (expected, timestamp) in acked.transfers.items():
            stored = found.get(transfer_id)
            assert stored is not None, f"acknowledged transfer {transfer_id} was lost"
            assert {k: stored[k] for k in expected} == expected, (stored, expected)
            assert stored["timestamp"] == timestamp, (stored, timestamp)
        for pending_id, outcome in acked.settled.items():
            assert found[pending_id]["state"] == outcome, (found[pending_id], outcome)

        # no transfer twice; each in the histories of exactly its two accounts
        places: dict[str, list[str]] = {}
        for account, transfers in histories.items():
            ids = [t["id"] for t in transfers]
            assert len(ids) == len(set(ids)), f"a transfer appears twice in {account}"
            for transfer in transfers:
                places.setdefault(transfer["id"], []).append(account)
        stored_by_id = {t["id"]: t for ts in histories.values() for t in ts}
        for transfer_id, transfer in stored_by_id.items():
            assert sorted(places[transfer_id]) == \
                sorted([transfer["debit_account"], transfer["credit_account"]]), transfer
        assert set(acked.transfers) <= set(stored_by_id)

        # balances are the sum of the stored transfers; debits equal credits
        accounts = {a["id"]: a for a in admin.call("lookup_accounts", {"ids": ACCOUNTS})[
            "accounts"]}
        sums = {a: {"debits_posted": 0, "credits_posted": 0, "debits_pending": 0,
                    "credits_pending": 0} for a in ACCOUNTS}
        for transfer in stored_by_id.values():
            if transfer["void_pending_id"] is not None:
                continue
            if transfer["pending"]:
                if transfer["state"] != "pending":
                    continue
                kind = "pending"
            else:
                kind = "posted"
            sums[transfer["debit_account"]][f"debits_{kind}"] += transfer["amount"]
            sums[transfer["credit_account"]][f"credits_{kind}"] += transfer["amount"]
        for account, expected in sums.items():
            assert {k: accounts[account][k] for k in expected} == expected, (account, expected)
        for kind in ("posted", "pending"):
            assert sum(a[f"debits_{kind}"] for a in accounts.values()) == \
                sum(a[f"credits_{kind}"] for a in accounts.values())

        # batches: finished, counts add up, atomic all or nothing, partial exactly as sent
        batch_items = [i for _, items in acked.batches.values() for i, _ in items]
        batch_found = lookup_all(admin, batch_items)
        for batch_id, (mode, items) in acked.batches.items():
            summary = summaries[batch_id]
            assert summary["state"] == "completed", summary
            assert summary["total"] == len(items)
            assert summary["created"] + summary["failed"] == summary["total"], summary
            results = all_pages(admin, "get_batch_results", {"batch_id": batch_id, "limit": 8190},
                                "results", "offset")
            assert [r["index"] for r in results] == list(range(len(items)))
            assert [r["id"] for r in results] == [i for i, _ in items], "a result per item"
            present = [i in batch_found for i, _ in items]
            if mode == "atomic":
                everything = all(good for _, good in items)
                assert present == [everything] * len(items), (batch_id, present)
                assert summary["created"] == (len(items) if everything else 0), summary
            else:
                assert present == [good for _, good in items], (batch_id, present)
                assert summary["created"] == len(items) - 1, summary
            for result, is_present in zip(results, present):
                assert (result["status"] == "created") == is_present, (result, is_present)

        # windows: nets sum to zero, acknowledged reports unchanged
        windows = admin.call("list_windows", {})["windows"]
        assert sum(w["state"] == "open" for w in windows) == 1
        for window in windows:
            report = admin.call("get_window", {"window_id": window["window_id"]})
            for currency in {p["currency"] for p in report["positions"]}:
                assert sum(p["net"] for p in report["positions"]
                           if p["currency"] == currency) == 0, report
            if window["window_id"] in acked.windows:
                assert report == acked.windows[window["window_id"]], "a closed window changed"
    return {"transfers": len(stored_by_id), "batches_resumed": unfinished}


def crash_loop(tmp_path, rounds: int, seed: int, epoch_rounds: int | None = None) -> dict:
    rng = random.Random(seed)
    figures = {"rounds": 0, "acked_transfers": 0, "acked_replies": 0, "batches": 0,
               "batches_resumed": 0, "windows_closed": 0, "torn_tails": 0}
    switch, acked = None, None
    for round_number in range(rounds):
        if acked is None or (epoch_rounds and round_number % epoch_rounds == 0):
            if switch is not None:  # the previous epoch's switch; a new data directory follows
                assert switch.stop() == 0
            switch = SwitchProcess(tmp_path / f"data-{round_number}", extra_args=SERVE_ARGS)
            switch.start()
            with WireClient(switch.host, switch.port) as admin:
                admin.hello("admin", switch.admin_token)
                create_world(admin)
            acked = Acked()
        try:
            this_round = run_round(switch, round_number, rng)
            acked.merge(this_round)
            report = verify_data_dir(switch.data_dir)  # what `wal verify` sees after a kill
            assert not report.damaged, "\n".join(format_report(report))
            figures["torn_tails"] += any(s.torn_tail for s in report.segments)
            switch.start()
            checked = verify(switch, acked)
        except BaseException:
            print(f"crash loop failed in round {round_number} (CRASH_SEED={seed}); "
                  f"switch log: {switch.log_path}")
            switch.stop()
            raise
        figures["rounds"] += 1
        figures["acked_transfers"] += len(this_round.transfers)
        figures["acked_replies"] += this_round.replies
        figures["batches"] += len(this_round.batches)
        figures["windows_closed"] += len(this_round.windows)
        figures["batches_resumed"] += checked["batches_resumed"]
    assert switch.stop() == 0
    return figures


def test_crash_loop_under_mixed_load_loses_nothing_acknowledged(tmp_path):
    seed = int(os.environ.get("CRASH_SEED", "20261122"))
    figures = crash_loop(tmp_path, CRASH_ROUNDS_DEFAULT, seed)
    print(f"crash loop: {figures}")
    assert figures["acked_transfers"] > 100, "the load did not get going"
    assert figures["batches"] and figures["windows_closed"], figures


@pytest.mark.soak
def test_crash_loop_soak(tmp_path):
    rounds = int(os.environ.get("CRASH_ROUNDS", "300"))
    seed = int(os.environ.get("CRASH_SEED", str(random.randrange(1 << 30))))
    started = time.monotonic()
    figures = crash_loop(tmp_path, rounds, seed,
                         epoch_rounds=int(os.environ.get("CRASH_EPOCH_ROUNDS", "30")))
    print(f"crash soak (CRASH_SEED={seed}): {figures} in {time.monotonic() - started:.0f} s")
    assert figures["rounds"] == rounds
