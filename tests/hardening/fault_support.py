"""Helpers for the fault and crash tests: the switch's own CLI as a subprocess, the records of a
segment as they lie on disk, and checks that run against a restarted switch."""
import hashlib
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgpack

from support.wire import WireClient
from payswitch.switch.storage.records import RecordScanner
from payswitch.switch.storage.segments import list_segments, list_snapshots

REPO = Path(__file__).resolve().parents[2]
ACCOUNTS = ["a-funding", "a-1", "a-2", "b-1", "b-eur"]


def run_switch_cli(*args, stdin: str = "", timeout_s: float = 60.0) -> tuple[int, str]:
    """`python -m switch ARGS` as the operator runs it; (exit code, stdout + stderr)."""
    result = subprocess.run([sys.executable, "-m", "switch", *map(str, args)], input=stdin,
                            capture_output=True, text=True, timeout=timeout_s, cwd=REPO)
    return result.returncode, result.stdout + result.stderr


def records(segment: Path) -> list[tuple[int, list]]:
    """(offset, [seq, now_ns, caller, op, args]) of every intact record of one segment file."""
    return [(offset, msgpack.unpackb(payload, raw=False, strict_map_key=False))
            for offset, payload in RecordScanner(segment.read_bytes())]


def find_record(data_dir: Path, transfer_id: str) -> tuple[Path, int, int]:
    """(segment, offset, seq) of the `transfer` record that created `transfer_id`."""
    for _, segment in list_segments(data_dir / "wal"):
        for offset, (seq, _, _, op, args) in records(segment):
            if op == "transfer" and args["id"] == transfer_id:
                return segment, offset, seq
    raise AssertionError(f"no record of {transfer_id}")


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


def tree_digest(data_dir: Path) -> dict[str, str]:
    """Every file under the log and snapshot folders with a digest of its bytes."""
    return {str(p.relative_to(data_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in ("wal", "snapshots") for p in sorted((data_dir / folder).rglob("*"))
            if p.is_file()}


def send_transfers(admin: WireClient, prefix: str, count: int, amount: int = 3,
                   reference: str | None = None) -> dict[str, int]:
    """`count` single transfers a-1 -> b-1, one at a time; id -> acknowledged timestamp."""
    acked = {}
    for n in range(count):
        transfer_id = f"{prefix}{n}"
        result = admin.call("transfer", {"id": transfer_id, "debit_account": "a-1",
                                         "credit_account": "b-1", "amount": amount,
                                         "reference": reference})
        assert result["status"] == "created", result
        acked[transfer_id] = result["timestamp"]
    return acked


def wait_for_durable_reads(client: WireClient, timeout_s: float = 20.0) -> None:
    """After writes stop, reads answer `overloaded` until the durable state is reloaded."""
    deadline = time.monotonic() + timeout_s
    while True:
        reply = client.request("lookup_accounts", {"ids": ["a-1"]})
        if reply["ok"] or reply["error"]["code"] != "overloaded":
            assert reply["ok"], reply
            return
        assert time.monotonic() < deadline, "reads did not resume after writes stopped"
        time.sleep(0.05)


def assert_books_balance(admin: WireClient, accounts=ACCOUNTS) -> dict[str, dict]:
    """Debits equal credits, posted and pending, over the given accounts; returns them by id."""
    found = {a["id"]: a for a in admin.call("lookup_accounts", {"ids": list(accounts)})["accounts"]}
    assert set(found) == set(accounts)
    rows = found.values()
    assert sum(a["debits_posted"] for a in rows) == sum(a["credits_posted"] for a in rows)
    assert sum(a["debits_pending"] for a in rows) == sum(a["credits_pending"] for a in rows)
    return found


def snapshots(data_dir: Path) -> list[tuple[int, Path]]:
    return list_snapshots(data_dir / "snapshots")


def build_fault_shim(out_dir: Path) -> Path:
    """Compiles fault_shim.c (an LD_PRELOAD fsync/fdatasync fault injector); skips the test
    cleanly where there is no C compiler."""
    import shutil

    import pytest
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        pytest.skip("no C compiler to build the fault-injecting shim")
    library = out_dir / "fault_shim.so"
    built = subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(library),
                            str(Path(__file__).with_name("fault_shim.c")), "-ldl"],
                           capture_output=True, text=True)
    if built.returncode != 0:
        pytest.skip(f"cannot build the fault shim: {built.stderr.strip()[:500]}")
    return library


class RecordingSender(threading.Thread):
    """Pipelines single transfers a-1 -> b-1 over one connection and records every outcome:
    `acked` id -> (amount, timestamp), `internal` id -> message, `other` any other reply.
    Stops on `stop`, when the server goes away, or after the first round with an `internal`."""

    def __init__(self, host, port, token, prefix: str, stop: threading.Event, depth: int = 16):
        super().__init__(daemon=True)
        self.client = WireClient(host, port, timeout_s=20)
        self.client.hello("admin", token)
        self.prefix, self.stop_event, self.depth = prefix, stop, depth
        self.acked: dict[str, tuple[int, int]] = {}
        self.internal: dict[str, str] = {}
        self.other: list[dict] = []
        self.sent: dict[str, int] = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        counter = 0
        try:
            while not self.stop_event.is_set() and not self.internal:
                ids = []
                for n in range(self.depth):
                    counter += 1
                    transfer_id, amount = f"{self.prefix}-{counter}", 1 + counter % 5
                    self.sent[transfer_id] = amount
                    ids.append(transfer_id)
                    self.client.send({"id": n, "op": "transfer", "args": {
                        "id": transfer_id, "debit_account": "a-1", "credit_account": "b-1",
                        "amount": amount}}, "msgpack" if n % 2 else "json")
                for n, transfer_id in enumerate(ids):
                    reply = self.client.recv()
                    assert reply["id"] == n, reply
                    if reply["ok"]:
                        self.acked[transfer_id] = (self.sent[transfer_id],
                                                   reply["result"]["timestamp"])
                    elif reply["error"]["code"] == "internal":
                        self.internal[transfer_id] = reply["error"]["message"]
                    else:
                        self.other.append(reply)
        except (ConnectionError, OSError):
            pass
        except BaseException as error:  # reported by the test, not lost in a thread
            self.error = error
        finally:
            self.client.close()
