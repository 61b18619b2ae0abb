"""Switch nodes replicating through a real JetStream cluster, and a client that follows failover.

Nodes listen on fixed ports (advertised to clients), so a node keeps its address when it
restarts, as it does in production.
"""
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from support.nats_cluster import NatsCluster
from support.waiting import wait_until
from support.switch_process import SwitchProcess
from support.wire import WireClient

ADMIN_TOKEN = "replication-test-admin-token"
WAIT_S = 60.0
RETRYABLE = ("not_primary", "unavailable", "shutting_down", "overloaded")


def node(root: Path, cluster: NatsCluster, name: str, port: int, *args: str) -> SwitchProcess:
    return SwitchProcess(root / name, extra_args=(
        "--replication", cluster.urls, "--node-id", name, "--port", str(port),
        "--replication-replicas", str(cluster.size), "--metrics-port", "0", *args),
        env={"SWITCH_ADMIN_TOKEN": ADMIN_TOKEN})


def admin(switch: SwitchProcess) -> WireClient:
    client = WireClient(switch.host, switch.port, timeout_s=20)
    client.hello("admin", ADMIN_TOKEN)
    return client


def stats(switch: SwitchProcess) -> dict:
    with admin(switch) as client:
        return client.call("stats")


def wait_for(condition, what: str, timeout_s: float = WAIT_S):
    """wait_until, taking a node that does not answer (it restarts, say) as "not yet"."""
    def answered():
        try:
            return condition()
        except (OSError, ConnectionError, AssertionError, KeyError):
            return None
    return wait_until(answered, what, timeout_s)


def wait_for_role(switch: SwitchProcess, role: str) -> dict:
    return wait_for(lambda: (s := stats(switch))["role"] == role and s, f"{switch.data_dir.name} "
                    f"to be {role}")


def digest_at(switch: SwitchProcess) -> dict:
    with admin(switch) as client:
        return client.call("state_digest")


def wait_for_same_state(a: SwitchProcess, b: SwitchProcess) -> dict:
    """Both nodes' digests once they are at the same sequence (the standby caught up)."""
    def same():
        da, db = digest_at(a), digest_at(b)
        return da["seq"] == db["seq"] and (da, db)
    da, db = wait_for(same, "the standby to reach the primary's sequence")
    assert da == db
    return da


class FailoverSender(threading.Thread):
    """Sends transfers a-1 -> b-1 one at a time over the wire, each resent (same id) to the
    next node after a lost connection, `not_primary` (to the named primary) or `unavailable`,
    until acknowledged: what a client that may never lose money does. `acked` holds the ids
    acknowledged `created` or `exists`; `ack_times` when each was acknowledged."""

    def __init__(self, nodes: list[SwitchProcess], name: str, stop: threading.Event,
                 amount: int = 1):
        super().__init__(daemon=True)
        self.addresses = [(n.host, n.port) for n in nodes]
        self.name_prefix = name
        self.stop_event = stop
        self.amount = amount
        self.acked: dict[str, int] = {}
        self.ack_times: list[float] = []
        self.retries = 0
        self.refusals: dict[str, int] = {}  # error code -> how many times it was answered
        self.error: BaseException | None = None
        self._index = 0
        self._client: WireClient | None = None

    def _connect(self) -> WireClient:
        while self._client is None:
            host, port = self.addresses[self._index % len(self.addresses)]
            try:
                self._client = WireClient(host, port, timeout_s=10)
                self._client.hello("admin", ADMIN_TOKEN)
            except (OSError, ConnectionError, AssertionError):
                self._drop()
                time.sleep(0.05)
        return self._client

    def _drop(self, to: str | None = None) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None
        if to is not None:
            host, port = to.rsplit(":", 1)
            self._index = self.addresses.index((host, int(port)))
        else:
            self._index += 1

    def send_until_acked(self, transfer_id: str) -> None:
        args = {"id": transfer_id, "debit_account": "a-1", "credit_account": "b-1",
                "amount": self.amount}
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                reply = self._connect().request("transfer", args, "msgpack")
            except (OSError, ConnectionError):
                self._drop()
                self.retries += 1
                continue
            if reply["ok"]:
                assert reply["result"]["status"] in ("created", "exists"), reply
                self.acked[transfer_id] = reply["result"]["timestamp"]
                self.ack_times.append(time.monotonic())
                return
            error = reply["error"]
            assert error["code"] in RETRYABLE, reply
            self.refusals[error["code"]] = self.refusals.get(error["code"], 0) + 1
            self.retries += 1
            self._drop(error.get("primary"))
            time.sleep(0.02)
        raise AssertionError(f"{transfer_id} not acknowledged in {WAIT_S}s")

    def run(self) -> None:
        counter = 0
        try:
            while not self.stop_event.is_set():
                counter += 1
                self.send_until_acked(f"{self.name_prefix}-{counter}")
        except BaseException as error:  # reported by the test, which joins the thread
            self.error = error
        finally:
            self._drop()


@contextmanager
def senders(nodes: list[SwitchProcess], count: int, prefix: str = "t"):
    stop = threading.Event()
    threads = [FailoverSender(nodes, f"{prefix}{n}", stop) for n in range(count)]
    for thread in threads:
        thread.start()
    try:
        yield threads
    finally:
        stop.set()
        for thread in threads:
            thread.join(WAIT_S)
    for thread in threads:
        if thread.error is not None:
            raise thread.error
