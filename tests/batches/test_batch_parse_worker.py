"""The parse worker process: memory files in, items from START and the outcome out."""
import hashlib
import os
import subprocess
import sys

import msgpack

HEADER = "id,debit_account,credit_account,amount,currency,reference\n"


def run_worker(fmt: str, kind: str, data: bytes, start: int = 0) -> tuple[int, list, dict]:
    """(exit status, items written, outcome) of one worker run, as the engine starts it."""
    source, items_fd, outcome_fd = (os.memfd_create(name) for name in ("in", "items", "out"))
    try:
        os.write(source, data)
        os.lseek(source, 0, os.SEEK_SET)
        done = subprocess.run(
            [sys.executable, "-m", "payswitch.switch.batches.parse_worker", fmt, kind, str(source),
             str(items_fd), str(outcome_fd), str(start), "5", str(os.getpid()), ""],
            pass_fds=(source, items_fd, outcome_fd), timeout=60)
        with open(items_fd, "rb", closefd=False) as file:
            file.seek(0)
            items = list(msgpack.Unpacker(file))
        outcome_bytes = os.pread(outcome_fd, os.fstat(outcome_fd).st_size, 0)
        return done.returncode, items, msgpack.unpackb(outcome_bytes) if outcome_bytes else {}
    finally:
        for fd in (source, items_fd, outcome_fd):
            os.close(fd)


def test_items_are_written_from_start_and_the_outcome_covers_all_of_them():
    data = (HEADER + "".join(f"t-{n},acc-a,acc-b,{n + 1},,\n" for n in range(5))).encode()
    status, items, outcome = run_worker("csv", "content", data, start=3)
    assert status == 0
    assert [item["id"] for item in items] == ["t-3", "t-4"]
    assert items[0]["amount"] == 4 and items[0]["linked"] is False
    assert outcome == {"problems": [], "count": 5, "sum": 15, "meta": {},
                       "digest": hashlib.sha256(data).hexdigest()}


def test_a_summary_writes_no_items_but_the_whole_outcome():
    data = (HEADER + "".join(f"t-{n},acc-a,acc-b,{n + 1},,\n" for n in range(5))).encode()
    status, items, outcome = run_worker("csv", "summary", data)
    assert status == 0 and items == []
    assert outcome == {"problems": [], "count": 5, "sum": 15, "meta": {},
                       "digest": hashlib.sha256(data).hexdigest()}


def test_problems_reach_the_outcome():
    bad_amount = HEADER + "t-1,acc-a,acc-b,1.5,,\n"
    status, _, outcome = run_worker("csv", "content", bad_amount.encode())
    assert status == 0
    assert outcome["problems"] == [
        ["line 2", "amount '1.5' must be a whole number of minor units (digits only)"]]


def test_submitted_item_lists_are_parsed_as_json_items():
    submitted = [{"id": "j-1", "debit_account": "acc-a", "credit_account": "acc-b",
                  "amount": 7}]
    status, items, outcome = run_worker("json", "items", msgpack.packb(submitted))
    assert status == 0
    assert [(item["id"], item["amount"]) for item in items] == [("j-1", 7)]
    assert outcome == {"problems": [], "count": 1, "sum": 7, "meta": {}, "digest": None}


def test_a_worker_whose_parent_is_gone_does_not_parse():
    source = os.memfd_create("in")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "payswitch.switch.batches.parse_worker", "csv", "content", str(source),
             str(source), str(source), "0", "0", "1", ""],  # pid 1 is not its parent
            pass_fds=(source,), timeout=60)
    finally:
        os.close(source)
    assert done.returncode == 1
