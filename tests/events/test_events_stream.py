"""The committed-event stream over real processes: a switch with --events and a real
nats-server. Every event of a workload in commit order without gaps, the example consumer of
docs/events.md agreeing with close_window, the operator CLI, metrics, restarts and the one-line
refusals to start."""
import asyncio
import contextlib
import io
import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import nats

from batches.batch_e2e_support import csv_file
from metrics.metrics_support import http_get, metrics_port, samples, value
from support.events_stream import (FAST_RETRY, assert_gap_free, read_events,
                                   wait_for_events_published)
from support.ports import free_ports
from support.processes import track
from support.switch_process import SwitchProcess, run_switch_once
from support.waiting import wait_until
from support.wire import WireClient
from support.world import create_world, lookup_all

REPO = Path(__file__).resolve().parents[2]


def admin_of(switch: SwitchProcess) -> WireClient:
    admin = WireClient(switch.host, switch.port)
    admin.hello("admin", switch.admin_token)
    return admin


def transfer(admin: WireClient, transfer_id: str, debit: str, credit: str, amount: int,
             **fields) -> dict:
    return admin.call("transfer", {"id": transfer_id, "debit_account": debit,
                                   "credit_account": credit, "amount": amount, **fields})



def workload(admin: WireClient) -> dict:
    """Participants, accounts, one-phase, pending (posted, voided, expired) and linked
    transfers, a batch with a failing item, then a window close; returns close_window's reply."""
    create_world(admin)
    transfer(admin, "t-1", "a-1", "b-1", 100)
    transfer(admin, "p-exp", "a-1", "b-1", 10, pending=True, timeout=1)
    transfer(admin, "p-post", "a-1", "b-1", 300, pending=True)
    admin.call("transfer", {"id": "post-1", "post_pending_id": "p-post", "amount": 200})
    transfer(admin, "p-void", "a-1", "b-1", 50, pending=True)
    admin.call("transfer", {"id": "void-1", "void_pending_id": "p-void"})
    admin.call("create_transfers", {"transfers": [
        {"id": "c-1", "debit_account": "a-1", "credit_account": "b-1", "amount": 5,
         "linked": True},
        {"id": "c-2", "debit_account": "a-2", "credit_account": "b-1", "amount": 5},  # no funds
        {"id": "ok-1", "debit_account": "b-1", "credit_account": "a-2", "amount": 7}]})
    content = csv_file([("bt-1", "a-1", "b-1", 1200, "USD", "invoice 1"),
                        ("bt-2", "a-2", "b-1", 10**9, "USD", "too much"),
                        ("bt-3", "a-1", "b-1", 300, "USD", "invoice 2")])
    admin.call("submit_batch", {"batch_id": "B-1", "format": "csv", "mode": "partial",
                                "content": content.decode(), "control_count": 3,
                                "control_sum": 1500 + 10**9})
    wait_until(lambda: admin.call("get_batch", {"batch_id": "B-1"})["state"] == "completed",
               "batch B-1 completed")
    wait_until(lambda: lookup_all(admin, ["p-exp"])["p-exp"]["state"] == "expired",
               "p-exp expired")
    return admin.call("close_window", {})


def test_a_workload_is_in_the_stream_in_commit_order_without_gaps(events_switch, nats_server):
    with admin_of(events_switch) as admin:
        close = workload(admin)
        published = wait_for_events_published(admin)
        ledger = admin.call("stats")["ledger"]
    events = read_events(nats_server.urls)
    assert_gap_free(events)
    bodies = [body for _, _, body in events]
    assert published["last_published_seq"] == len(bodies) and published["diverged"] is None
    by_type: dict[str, list[dict]] = {}
    for body in bodies:
        by_type.setdefault(body["type"], []).append(body)
    assert [p["id"] for p in by_type["participant.created"]] == ["bank-a", "bank-b"]
    assert [a["id"] for a in by_type["account.created"]] == \
        ["a-funding", "a-1", "a-2", "b-1", "b-eur"]
    assert [(t["id"], t["kind"]) for t in by_type["transfer.created"]] == [
        ("fund-a-1", "regular"), ("t-1", "regular"), ("p-exp", "pending"),
        ("p-post", "pending"), ("p-void", "pending"), ("ok-1", "regular"),
        ("bt-1", "regular"), ("bt-3", "regular")]
    [posted] = by_type["pending.posted"]
    assert (posted["id"], posted["pending_id"], posted["amount"], posted["pending_amount"]) == \
        ("post-1", "p-post", 200, 300)
    [voided] = by_type["pending.voided"]
    assert (voided["id"], voided["pending_id"], voided["amount"]) == ("void-1", "p-void", 50)
    [expired] = by_type["pending.expired"]
    assert (expired["id"], expired["amount"]) == ("p-exp", 10)
    assert expired["committed_at"] >= expired["expires_at"]
    [batch] = by_type["batch.finished"]
    assert {k: batch[k] for k in ("batch_id", "state", "total", "created", "failed")} == \
        {"batch_id": "B-1", "state": "completed", "total": 3, "created": 2, "failed": 1}
    [closed] = by_type["window.closed"]
    assert bodies[-1] is closed
    assert {k: closed[k] for k in close if k != "state"} == \
        {k: v for k, v in close.items() if k != "state"}
    # commit order: the ledger's timestamps grow along the stream
    stamped = [body["timestamp"] for body in bodies
               if body["type"] in ("transfer.created", "pending.posted", "pending.voided")]
    assert stamped == sorted(stamped) and len(set(stamped)) == len(stamped)
    transfer_events = sum(len(by_type[kind]) for kind in
                          ("transfer.created", "pending.posted", "pending.voided"))
    assert transfer_events == ledger["transfers"]  # posts and voids are transfers too
    assert not events_switch.log_events("events_stream_gap")


def docs_consumer() -> dict:
    """The example consumer of docs/events.md, as printed there."""
    text = (REPO / "docs/events.md").read_text()
    [code] = re.findall(r"```python\n(# positions\.py.*?)```", text, re.S)
    namespace = {"__name__": "positions"}
    exec(compile(code, "docs/events.md positions.py", "exec"), namespace)
    return namespace


def test_the_docs_example_consumer_agrees_with_close_window(events_switch, nats_server):
    with admin_of(events_switch) as admin:
        first = workload(admin)
        transfer(admin, "w2-1", "b-1", "a-2", 40)
        transfer(admin, "w2-2", "a-1", "b-1", 25)
        transfer(admin, "w2-3", "a-1", "a-2", 1_000)  # within bank-a: no position
        admin.call("create_accounts", {"accounts": [
            {"id": "a-eur", "participant": "bank-a", "currency": "EUR", "overdraft_limit": None}]})
        transfer(admin, "w2-eur", "a-eur", "b-eur", 9)
        transfer(admin, "w2-p", "b-1", "a-1", 30, pending=True)
        admin.call("transfer", {"id": "w2-post", "post_pending_id": "w2-p"})
        second = admin.call("close_window", {})
        transfer(admin, "w3-1", "a-1", "b-1", 3)
        wait_for_events_published(admin)
    consumer = docs_consumer()
    positions = consumer["Positions"]()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        asyncio.run(consumer["consume"](nats_server.urls.split(","), positions))
    assert positions.closed == {1: first["positions"], 2: second["positions"]}
    assert len(second["positions"]) == 4  # both banks in USD and in EUR
    assert printed.getvalue().splitlines() == [
        f"window 1: {len(first['positions'])} positions, agree with the switch's",
        "window 2: 4 positions, agree with the switch's"]
    assert positions.rows() == [
        {"participant": "bank-a", "currency": "USD", "debits": 3, "credits": 0, "net": -3},
        {"participant": "bank-b", "currency": "USD", "debits": 0, "credits": 3, "net": 3}]
    assert positions.next_seq == len(read_events(nats_server.urls)) + 1


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "client", *args], capture_output=True,
                          text=True, timeout=120, cwd=REPO, env=env)


def test_cli_events_prints_what_the_stream_holds(events_switch, nats_server):
    with admin_of(events_switch) as admin:
        create_world(admin)
        transfer(admin, "t-1", "a-1", "b-1", 100, reference="invoice 7")
        wait_for_events_published(admin)
    stream = read_events(nats_server.urls)
    as_json = run_cli("events", "--nats", nats_server.urls, "--from", "3", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert [json.loads(line) for line in as_json.stdout.splitlines()] == \
        [body for _, _, body in stream[2:]]
    human = run_cli("events", env={"PAYSWITCH_NATS": nats_server.urls,
                                   "PATH": "/usr/bin:/bin"})
    assert human.returncode == 0, human.stderr
    lines = human.stdout.splitlines()
    assert len(lines) == len(stream)
    for line, (_, _, body) in zip(lines, stream):
        assert re.fullmatch(rf"{body['seq']}  \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{9}}Z  "
                            rf"{re.escape(body['type'])}  .+", line), line
    assert lines[-1].endswith("transfer.created  t-1 (regular) 100 USD a-1 -> b-1")
    assert "participant.created  bank-a (Bank A)" in lines[0]
    beyond = run_cli("events", "--nats", nats_server.urls, "--from", str(len(stream) + 1))
    assert (beyond.returncode, beyond.stdout) == (0, "")


def test_cli_events_follow_prints_new_events_as_they_come(events_switch, nats_server):
    with admin_of(events_switch) as admin:
        create_world(admin)
        wait_for_events_published(admin)
        start = len(read_events(nats_server.urls)) + 1
        reader = track(subprocess.Popen(
            [sys.executable, "-m", "client", "events", "--nats", nats_server.urls, "--from",
             str(start), "--follow", "--json"], stdout=subprocess.PIPE, text=True, cwd=REPO))
        lines: list[str] = []
        collector = threading.Thread(target=lambda: lines.extend(reader.stdout), daemon=True)
        collector.start()
        try:
            transfer(admin, "late-1", "a-1", "b-1", 5)
            wait_until(lambda: lines, "the followed event printed")
            transfer(admin, "late-2", "a-1", "b-1", 6)
            wait_until(lambda: len(lines) == 2, "the second followed event printed")
        finally:
            reader.terminate()
            reader.wait(10)
    assert [(json.loads(line)["seq"], json.loads(line)["id"]) for line in lines] == \
        [(start, "late-1"), (start + 1, "late-2")]


def test_cli_events_without_nats_says_how():
    result = run_cli("events", env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert result.stderr.strip() == "error: events needs --nats URLS or PAYSWITCH_NATS"


def test_metrics_and_stats_show_the_stream(tmp_path, nats_server):
    switch = SwitchProcess(tmp_path / "data", extra_args=(
        "--events", nats_server.urls, "--metrics-port", "0")).start()
    try:
        with admin_of(switch) as admin:
            create_world(admin)
            events = wait_for_events_published(admin)
        status, text = http_get(metrics_port(switch), "/metrics")
    finally:
        switch.stop()
    assert status == 200
    scraped = samples(text)
    assert events["published"] == events["last_published_seq"] == 8  # 2 + 5 + 1
    assert value(scraped, "payswitch_events_published_total") == 8
    assert value(scraped, "payswitch_events_last_published_seq") == 8
    assert value(scraped, "payswitch_events_backlog") == 0
    assert value(scraped, "payswitch_events_connected") == 1
    assert (events["stream"], events["max_backlog"], events["writes_paused"]) == \
        ("PAYSWITCH_EVENTS", 100_000, False)


def test_a_restart_continues_the_numbers(tmp_path, nats_server):
    args = ("--events", nats_server.urls, *FAST_RETRY)
    switch = SwitchProcess(tmp_path / "data", extra_args=args).start()
    try:
        with admin_of(switch) as admin:
            create_world(admin)
            transfer(admin, "before", "a-1", "b-1", 1)
        switch.restart()
        with admin_of(switch) as admin:
            transfer(admin, "after", "a-1", "b-1", 2)
            wait_for_events_published(admin)
    finally:
        switch.stop()
    events = read_events(nats_server.urls)
    assert_gap_free(events)
    assert [body.get("id") for _, _, body in events[-2:]] == ["before", "after"]
    assert not switch.log_events("events_stream_gap")


def test_events_switched_on_for_a_ledger_with_history_start_after_it(tmp_path, nats_server):
    switch = SwitchProcess(tmp_path / "data").start()
    try:
        with admin_of(switch) as admin:
            create_world(admin)
        switch.stop()  # a snapshot of that history is written at shutdown
        switch.extra_args = ("--events", nats_server.urls)
        switch.start()
        [gap] = switch.log_events("events_stream_gap")
        with admin_of(switch) as admin:
            stats = admin.call("stats")
            transfer(admin, "first-event", "a-1", "b-1", 1)
            wait_for_events_published(admin)
    finally:
        switch.stop()
    assert gap["level"] == "warning" and gap["stream_last_seq"] == 0
    assert gap["first_wal_seq"] == stats["snapshots"]["last_seq"] + 1
    [(_, _, body)] = read_events(nats_server.urls)
    assert (body["seq"], body["type"], body["id"], body["wal_seq"]) == \
        (1, "transfer.created", "first-event", gap["first_wal_seq"])


def test_no_reachable_nats_refuses_to_start_in_one_line(tmp_path):
    [port] = free_ports(1)
    data_dir = tmp_path / "data"
    code, output = run_switch_once(data_dir, "--events", f"nats://127.0.0.1:{port}",
                                   "--events-connect-timeout-s", "1")
    assert code == 1
    [line] = output.strip().splitlines()
    assert line.startswith(f"switch: cannot start: events: no NATS server reachable at "
                           f"nats://127.0.0.1:{port} within 1 s")
    assert not data_dir.exists()  # nothing created


def test_without_nats_py_events_refuse_to_start_in_one_line(tmp_path):
    data_dir = tmp_path / "data"
    hide_nats = ("import sys; sys.modules['nats'] = None; from switch.cli import main; "
                 f"sys.exit(main(['serve', '--data-dir', {str(data_dir)!r}, '--port', '0', "
                 f"'--events', 'nats://127.0.0.1:4222']))")
    result = subprocess.run([sys.executable, "-c", hide_nats], capture_output=True, text=True,
                            timeout=60, cwd=REPO)
    assert result.returncode == 1
    assert result.stdout + result.stderr == ("switch: cannot start: --events needs nats-py: "
                                             "pip install 'payswitch[replication]'\n")


def test_nats_py_is_imported_only_with_events():
    probe = ("import sys, switch.server, switch.cli, client.cli; "
             "print(sorted(m for m in sys.modules if m == 'nats' or m.startswith('nats.')))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=60, cwd=REPO)
    assert (result.returncode, result.stdout.strip()) == (0, "[]"), result.stderr


def test_a_stream_of_that_name_for_other_subjects_refuses_to_start_in_one_line(tmp_path,
                                                                               nats_server):
    async def create_other() -> None:
        connection = await nats.connect(nats_server.urls)
        try:
            await connection.jetstream().add_stream(name="PAYSWITCH_EVENTS",
                                                    subjects=["orders.>"])
        finally:
            await connection.close()
    asyncio.run(create_other())
    code, output = run_switch_once(tmp_path / "data", "--events", nats_server.urls)
    assert code == 1
    [line] = output.strip().splitlines()
    assert line == ("switch: cannot start: events: stream PAYSWITCH_EVENTS exists with subjects "
                    "['orders.>'], not ['payswitch.events.>']: choose another --events-stream "
                    "or --events-subjects")


def test_a_second_switch_with_another_history_is_refused_by_the_stream(tmp_path, nats_server):
    """Two switches pointed at one stream: the second derives other events where the stream
    ends, so it stops publishing and refuses writes; the stream keeps the first one's history."""
    args = ("--events", nats_server.urls, *FAST_RETRY)
    first = SwitchProcess(tmp_path / "first", extra_args=args).start()
    second = None
    try:
        with admin_of(first) as admin:
            create_world(admin)
            wait_for_events_published(admin)
        second = SwitchProcess(tmp_path / "second", extra_args=args).start()
        with admin_of(second) as admin:
            create_world(admin)  # its own history, up to where the stream ends
            refused = admin.request("transfer", {"id": "t-2", "debit_account": "a-1",
                                                 "credit_account": "b-1", "amount": 1})
            events = admin.call("stats")["events"]
        assert refused["error"]["code"] == "unavailable"
        assert "holds another history than this node" in refused["error"]["message"]
        assert "differs" in events["diverged"] and events["published"] == 0
        assert second.log_events("events_diverged")
        with admin_of(first) as admin:
            transfer(admin, "t-1", "a-1", "b-1", 1)
            wait_for_events_published(admin)
    finally:
        first.stop()
        if second is not None:
            second.stop()
    events = read_events(nats_server.urls)
    assert_gap_free(events)
    assert events[-1][2]["id"] == "t-1" and len(events) == 9
