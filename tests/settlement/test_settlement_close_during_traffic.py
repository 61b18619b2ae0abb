"""Windows closed while transfers stream in over several connections: no transfer is lost
between windows or counted twice, and every report equals an independent computation from the
transfers the switch lists."""
import random
import threading
import time

from settlement.settlement_support import (
    BANKS, all_transfers, as_computed, check_report_shape, create_settlement_world, ok,
    independent_reports, traffic_accounts,
)
from support.wire import WireClient

SENDERS = 4
PIPELINE = 8
CLOSES = 8


class Sender(threading.Thread):
    """Closed-loop pipelined transfers: interbank and on-us one-phase transfers, pending ones
    and, a round later, their posts and voids. Records every acknowledged item."""

    def __init__(self, switch, name: str, stop: threading.Event):
        super().__init__(daemon=True)
        self.client = WireClient(switch.host, switch.port, timeout_s=30)
        self.client.hello("admin", switch.admin_token)
        self.name_prefix = name
        self.rng = random.Random(name)
        self.stop_event = stop
        self.acked: dict[str, int] = {}  # id -> timestamp
        self.pending: list[str] = []
        self.counter = 0
        self.error: BaseException | None = None

    def _id(self) -> str:
        self.counter += 1
        return f"{self.name_prefix}-{self.counter}"

    def _item(self) -> dict:
        rng = self.rng
        if self.pending and rng.random() < 0.3:
            target = self.pending.pop(rng.randrange(len(self.pending)))
            key = "post_pending_id" if rng.random() < 0.7 else "void_pending_id"
            item = {"id": self._id(), key: target}
            if key == "post_pending_id" and rng.random() < 0.5:
                item["amount"] = 1  # a partial post
            return item
        payer = rng.choice(BANKS)
        cur = "eur" if rng.random() < 0.2 else None  # one EUR account per bank: interbank
        on_us = cur is None and rng.random() < 0.25
        payee = payer if on_us else rng.choice([b for b in BANKS if b != payer])
        debit = f"{payer}-{cur or '1'}"
        credit = f"{payee}-{cur or '2'}"
        item = {"id": self._id(), "debit_account": debit, "credit_account": credit,
                "amount": rng.randint(1, 10_000)}
        if rng.random() < 0.15:
            item["pending"] = True
        return item

    def _round(self) -> None:
        requests = []
        for n in range(PIPELINE):
            items = [self._item() for _ in range(1 if n % 2 else 5)]
            op, args = ("transfer", items[0]) if n % 2 else \
                ("create_transfers", {"transfers": items})
            requests.append((op, items))
            self.client.send({"id": n, "op": op, "args": args}, "msgpack" if n % 3 else "json")
        for n, (op, items) in enumerate(requests):
            reply = self.client.recv()
            assert reply["id"] == n and reply["ok"], reply
            results = reply["result"]["results"] if op == "create_transfers" \
                else [reply["result"]]
            for item, result in zip(items, results):
                assert result["status"] == "created", (item, result)
                self.acked[item["id"]] = result["timestamp"]
                if item.get("pending"):
                    self.pending.append(item["id"])

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                self._round()
        except BaseException as error:  # reported by the test
            self.error = error
        finally:
            self.client.close()


def test_windows_closed_during_traffic_match_the_transfers(switch, admin):
    create_settlement_world(admin)
    stop = threading.Event()
    senders = [Sender(switch, f"s{n}", stop) for n in range(SENDERS)]
    for sender in senders:
        sender.start()
    closes = []

    def acked() -> int:
        return sum(len(sender.acked) for sender in senders)

    try:
        for _ in range(CLOSES):
            time.sleep(0.1)
            seen = acked()
            deadline = time.monotonic() + 30
            while acked() < seen + 20 and time.monotonic() < deadline:
                time.sleep(0.01)  # let traffic land in this window, even on a busy machine
            closes.append(ok(admin, "close_window", {}))
    finally:
        stop.set()
        for sender in senders:
            sender.join(60)
    for sender in senders:
        assert sender.error is None, sender.error
    closes.append(ok(admin, "close_window", {}))

    windows = ok(admin, "list_windows")["windows"]
    assert [w["window_id"] for w in windows] == list(range(1, CLOSES + 3))
    for earlier, later in zip(windows, windows[1:]):
        assert earlier["closed_at"] == later["opened_at"]  # contiguous: nothing falls between
    transfers = all_transfers(admin, traffic_accounts())
    acked = {tid: ts for sender in senders for tid, ts in sender.acked.items()}
    assert len(acked) > 20 * CLOSES  # the closes really happened during traffic
    assert {tid: transfers[tid]["timestamp"] for tid in acked} == acked
    computed = independent_reports(transfers, windows)
    busy = 0
    for report in closes:
        wid = report["window_id"]
        check_report_shape(report)
        assert ok(admin, "get_window", {"window_id": wid}) == report
        matrix = ok(admin, "get_window_matrix", {"window_id": wid})
        assert as_computed(report, matrix) == computed[wid], wid
        busy += report["transfers"] > 0
    assert busy >= CLOSES // 2  # most windows got traffic
    assert sum(c["transfers"] for c in computed.values()) == \
        sum(r["transfers"] for r in closes)
