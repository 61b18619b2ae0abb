"""Client threads that send transfers until the server goes away, recording what was acknowledged."""
import threading

from support.wire import WireClient

PIPELINE_DEPTH = 16


class TransferSender(threading.Thread):
    """Sends pipelined single transfers a-1 -> b-1 (and some 5-item create_transfers) over one
    connection; `acked` maps each acknowledged transfer id to (fields, timestamp)."""

    def __init__(self, host, port, token, name: str, stop: threading.Event):
        super().__init__(daemon=True)
        self.client = WireClient(host, port, timeout_s=10)
        self.client.hello("admin", token)
        self.name_prefix = name
        self.stop_event = stop
        self.acked: dict[str, tuple[dict, int]] = {}
        self.sent_ids: set[str] = set()
        self.counter = 0

    def _item(self) -> dict:
        self.counter += 1
        transfer_id = f"{self.name_prefix}-{self.counter}"
        self.sent_ids.add(transfer_id)
        return {"id": transfer_id, "debit_account": "a-1", "credit_account": "b-1",
                "amount": 1 + self.counter % 7, "reference": f"ref {self.counter}"}

    def _round(self) -> None:
        requests = []
        for n in range(PIPELINE_DEPTH):
            if n % 4 == 0:
                items = [self._item() for _ in range(5)]
                requests.append(("create_transfers", {"transfers": items}, items))
            else:
                item = self._item()
                requests.append(("transfer", item, [item]))
        for n, (op, args, _) in enumerate(requests):
            self.client.send({"id": n, "op": op, "args": args}, "msgpack" if n % 2 else "json")
        for n, (op, _, items) in enumerate(requests):
            reply = self.client.recv()
            assert reply["id"] == n and reply["ok"], reply
            results = reply["result"]["results"] if op == "create_transfers" else [reply["result"]]
            for item, result in zip(items, results):
                assert result["status"] == "created", result
                self.acked[item["id"]] = (item, result["timestamp"])

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                self._round()
        except (ConnectionError, OSError):
            pass  # the server was killed: everything acknowledged so far must survive
        finally:
            self.client.close()
