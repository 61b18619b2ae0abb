"""`python -m client batch ...` against a real switch: submit (inline or in parts), status with
progress, results as CSV and pain.002, exit codes."""
import asyncio
import csv
import hashlib
import io
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from batches.batch_e2e_support import (
    IBAN_CREDITOR, IBAN_DEBTOR, Session, create_iban_accounts, csv_file, running_switch,
)
from batches.batch_formats_support import Block, Tx, pain001
from payswitch.client import AsyncClient
from payswitch.client.batch_commands import Progress
from payswitch.client.cli import main
from support.world import FUNDS

ROOT = Path(__file__).resolve().parents[2]
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"}
ROWS = [(f"cli-{n}", "a-1", "b-1", 10 + n, "USD", f"row {n}") for n in range(6)]
ROWS_SUM = sum(row[3] for row in ROWS)


@pytest.fixture
def small_frames(tmp_path):
    with running_switch(tmp_path, "--max-frame-bytes", "4096", name="small") as (switch, tokens):
        yield switch, tokens


def cli(world, capsys, *argv, participant="bank-a", codec="msgpack"):
    """Runs the CLI in process; returns (exit code, stdout, stderr)."""
    switch, tokens = world
    code = main(["--port", str(switch.port), "--participant", participant,
                 "--token", tokens[participant], "--codec", codec, *argv], environ={})
    out, err = capsys.readouterr()
    return code, out, err


def fields_of(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        if not line.strip():
            break
        name, _, value = line.partition("  ")
        found[name] = value.strip()
    return found


def balances(world, ids):
    switch, tokens = world
    with Session(switch, "admin", tokens["admin"]) as admin:
        return admin.balances(ids)


@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_submit_a_csv_file_and_wait(world, capsys, tmp_path, codec):
    path = tmp_path / "payments.csv"
    path.write_bytes(csv_file(ROWS))
    code, out, err = cli(world, capsys, "batch", "submit", str(path), "--wait", codec=codec)
    assert code == 0, err
    shown = fields_of(out)
    batch_id = "file-" + hashlib.sha256(path.read_bytes()).hexdigest()[:40]
    assert shown["batch"] == batch_id
    assert (shown["state"], shown["total"], shown["created"], shown["failed"]) == \
        ("completed", "6", "6", "0")
    assert (shown["format"], shown["mode"], shown["parts"]) == ("csv", "partial", "0")
    assert (shown["control_count"], shown["control_sum"]) == ("6", str(ROWS_SUM))
    assert "100.0%" in err.splitlines()[-1]  # not a terminal: plain progress lines
    assert "\r" not in err
    assert balances(world, ["a-1", "b-1"]) == {"a-1": FUNDS - ROWS_SUM, "b-1": ROWS_SUM}
    # Submitted again: the same batch (the id comes from the content), nothing paid twice.
    code, out, err = cli(world, capsys, "--json", "batch", "submit", str(path), codec=codec)
    assert code == 0, err
    again = json.loads(out)
    assert (again["batch_id"], again["state"], again["created"]) == (batch_id, "completed", 6)
    assert balances(world, ["b-1"]) == {"b-1": ROWS_SUM}
    # Results as CSV on stdout, and the status of the batch.
    code, out, _ = cli(world, capsys, "batch", "results", batch_id, codec=codec)
    assert code == 0
    assert list(csv.reader(io.StringIO(out))) == \
        [["index", "id", "status"]] + [[str(n), row[0], "created"] for n, row in enumerate(ROWS)]
    code, out, _ = cli(world, capsys, "batch", "status", batch_id, codec=codec)
    assert code == 0 and fields_of(out)["state"] == "completed"


def test_a_large_file_is_uploaded_in_parts(small_frames, capsys, tmp_path):
    rows = [(f"big-{n}", "a-1", "a-2", 1 + n % 4, "USD", f"part {n}") for n in range(2000)]
    total = sum(row[3] for row in rows)
    path = tmp_path / "big.csv"
    path.write_bytes(csv_file(rows))
    # Once per codec (JSON carries parts as base64); the second time, under another batch id,
    # the same items are all `exists`.
    for codec in ("json", "msgpack"):
        batch_id = f"big-{codec}"
        code, out, err = cli(small_frames, capsys, "batch", "submit", str(path), "--batch-id",
                             batch_id, "--wait", codec=codec)
        assert code == 0, err
        shown = fields_of(out)
        assert int(shown["parts"]) > 10, shown
        assert (shown["state"], shown["created"]) == ("completed", "2000")
        assert "uploaded" in err
        output = tmp_path / f"{batch_id}.csv"
        code, out, err = cli(small_frames, capsys, "batch", "results", batch_id, "--output",
                             str(output), codec=codec)
        assert code == 0, err
        assert out.startswith(f"wrote 2,000 results (2,000 created, 0 failed) to {output}")
        written = list(csv.reader(io.StringIO(output.read_text())))
        expected = "created" if codec == "json" else "exists"
        assert written[1:] == [[str(n), row[0], expected] for n, row in enumerate(rows)]
    assert balances(small_frames, ["a-2"]) == {"a-2": total}
    # Submitted again after its parts were consumed: the earlier outcome, nothing re-sent.
    code, out, err = cli(small_frames, capsys, "batch", "submit", str(path), "--batch-id",
                         "big-json", codec="json")
    assert code == 0, err
    shown = fields_of(out)
    assert (shown["state"], shown["parts"]) == ("completed", "0")
    assert shown["note"].startswith("already submitted")
    assert balances(small_frames, ["a-2"]) == {"a-2": total}


def test_pain001_results_as_a_pain002_report(world, capsys, tmp_path):
    switch, tokens = world
    with Session(switch, "admin", tokens["admin"]) as admin:
        create_iban_accounts(admin)
    document = pain001([Block("B1", [Tx("P-OK", "12.34", creditor=IBAN_CREDITOR),
                                     Tx("P-BIG", "9000000.00", creditor=IBAN_CREDITOR)],
                              debtor=IBAN_DEBTOR)], version="03", msg_id="CLI-MSG")
    path = tmp_path / "payments.xml"
    path.write_bytes(document)
    code, out, err = cli(world, capsys, "batch", "submit", str(path), "--batch-id", "pain-cli",
                         "--wait")
    assert code == 0, err
    assert (fields_of(out)["format"], fields_of(out)["created"]) == ("pain.001", "1")
    report_path = tmp_path / "report.xml"
    code, out, err = cli(world, capsys, "batch", "results", "pain-cli", "--format", "pain.002",
                         "--file", str(path), "--output", str(report_path))
    assert code == 0, err
    report = ET.fromstring(report_path.read_bytes())
    assert report.findtext(".//p:OrgnlGrpInfAndSts/p:OrgnlMsgId", namespaces=NS) == "CLI-MSG"
    assert report.findtext(".//p:OrgnlGrpInfAndSts/p:GrpSts", namespaces=NS) == "PART"
    txs = [(t.findtext("p:OrgnlEndToEndId", namespaces=NS),
            t.findtext("p:TxSts", namespaces=NS),
            t.findtext("p:StsRsnInf/p:Rsn/p:Cd", namespaces=NS))
           for t in report.iterfind(".//p:TxInfAndSts", NS)]
    assert txs == [("P-OK", "ACSC", None), ("P-BIG", "RJCT", "AM04")]
    # pain.002 needs the original; another file is refused.
    with pytest.raises(SystemExit) as exit_info:
        cli(world, capsys, "batch", "results", "pain-cli", "--format", "pain.002")
    assert exit_info.value.code == 2
    other = tmp_path / "other.xml"
    other.write_bytes(pain001([Block("B1", [Tx("X-1", "1.00"), Tx("X-2", "1.00")],
                                     debtor=IBAN_DEBTOR)]))
    code, out, err = cli(world, capsys, "batch", "results", "pain-cli", "--format", "pain.002",
                         "--file", str(other))
    assert code == 1 and "file_mismatch" in err


def test_a_file_with_problems_is_not_sent(world, capsys, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(csv_file(ROWS[:2]) + b"x,a-1,b-1,1.50,USD,\n")
    code, out, err = cli(world, capsys, "batch", "submit", str(path), "--batch-id", "bad")
    assert code == 1
    assert "line 4" in out and "nothing was sent" in err
    code, _, err = cli(world, capsys, "batch", "status", "bad")
    assert code == 1 and "batch_not_found" in err


def test_wrong_control_totals_are_rejected_by_the_switch(world, capsys, tmp_path):
    path = tmp_path / "ok.csv"
    path.write_bytes(csv_file(ROWS))
    code, out, err = cli(world, capsys, "batch", "submit", str(path), "--batch-id", "ctl",
                         "--control-count", "7", "--control-sum", str(ROWS_SUM), "--wait")
    assert code == 1
    assert fields_of(out)["state"] == "rejected"
    assert "control_count is 7 but the batch has 6 items" in out
    assert "batch_rejected" in err
    assert balances(world, ["b-1"]) == {"b-1": 0}
    code, out, err = cli(world, capsys, "batch", "results", "ctl")
    assert code == 1 and "control_count is 7" in out


def test_atomic_mode_rolls_back(world, capsys, tmp_path):
    path = tmp_path / "atomic.csv"
    path.write_bytes(csv_file(ROWS + [("cli-bad", "a-2", "b-1", 5, "USD", None)]))
    code, out, err = cli(world, capsys, "batch", "submit", str(path), "--mode", "atomic",
                         "--wait")
    assert code == 0, err
    shown = fields_of(out)
    assert (shown["mode"], shown["state"], shown["created"], shown["failed"]) == \
        ("atomic", "completed", "0", "7")
    code, out, _ = cli(world, capsys, "--json", "batch", "results", shown["batch"])
    statuses = [r["status"] for r in json.loads(out)["results"]]
    assert statuses == ["linked_event_failed"] * 6 + ["insufficient_funds"]
    assert balances(world, ["a-1", "b-1"]) == {"a-1": FUNDS, "b-1": 0}


def test_usage_errors_exit_2(world, capsys, tmp_path):
    path = tmp_path / "payments.txt"
    path.write_bytes(csv_file(ROWS))
    for argv in (["batch", "submit", str(path)],  # format unknown from the extension
                 ["batch", "submit", str(path), "--format", "csv", "--control-count", "6"],
                 ["batch", "submit", str(tmp_path / "missing.csv")],
                 ["batch", "submit", str(path), "--mode", "sometimes"]):
        with pytest.raises(SystemExit) as exit_info:
            cli(world, capsys, *argv)
        assert exit_info.value.code == 2, argv
    code, out, err = cli(world, capsys, "batch", "submit", str(path), "--format", "csv",
                         "--wait")
    assert code == 0 and fields_of(out)["created"] == "6"


def test_progress_on_a_terminal_is_one_refreshed_line():
    stream = io.StringIO()
    progress = Progress(stream, tty=True, width=10)
    base = {"batch_id": "B", "total": 1000, "created": 0, "failed": 0, "problems": [],
            "control": {"count": 1000, "sum": 1}}
    progress.update({**base, "state": "received", "processed": 0})
    progress.update({**base, "state": "processing", "processed": 250, "created": 240,
                     "failed": 10})
    progress.update({**base, "state": "processing", "processed": 500, "created": 490,
                     "failed": 10})
    progress.update({**base, "state": "completed", "processed": 1000, "created": 990,
                     "failed": 10})
    text = stream.getvalue()
    assert text.count("\r") == 4 and text.count("\n") == 1 and text.endswith("\n")
    frames = text.split("\r")[1:]
    assert frames[0].startswith("batch B: received")
    assert frames[1].startswith("batch B: processing [##--------]  25.0% 250/1,000 items")
    assert "created 490, failed 10" in frames[2]
    assert frames[3].startswith("batch B: completed [##########] 100.0% 1,000/1,000 items")
    # Lines are padded so a shorter one hides the longer one before it.
    assert len(frames[3].rstrip("\n")) >= len(frames[2])


def test_status_follows_a_running_batch(world, capsys, tmp_path):
    switch, tokens = world
    rows = [(f"run-{n}", "a-1", "b-1", 1, "USD", None) for n in range(60_000)]
    with Session(switch, "bank-a", tokens["bank-a"], "msgpack") as bank_a:
        bank_a.upload("running", csv_file(rows), 1_000_000)
        bank_a.submit("running", "csv", count=60_000, total=60_000)
    code, out, err = cli(world, capsys, "batch", "status", "running", "--wait")
    assert code == 0, err
    assert fields_of(out)["created"] == "60000"
    assert err.splitlines()[-1].startswith("batch running: completed [#")


def test_the_module_entry_point(world, tmp_path):
    switch, tokens = world
    path = tmp_path / "entry.csv"
    path.write_bytes(csv_file(ROWS))
    done = subprocess.run(
        [sys.executable, "-m", "client", "--port", str(switch.port), "--participant", "bank-a",
         "--token", tokens["bank-a"], "--json", "batch", "submit", str(path), "--wait"],
        capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["created"] == 6


def test_sdk_submit_batch_with_bytes_content_over_json(world):
    switch, tokens = world

    async def run():
        async with await AsyncClient.connect(port=switch.port, participant="bank-a",
                                             token=tokens["bank-a"], codec="json") as client:
            await client.submit_batch("sdk-bytes", "csv", control_count=6, control_sum=ROWS_SUM,
                                      mode="partial", content=csv_file(ROWS))
            while (batch := await client.get_batch("sdk-bytes")).state not in \
                    ("completed", "rejected"):
                await asyncio.sleep(0.02)
            return batch

    assert asyncio.run(run()).state == "completed"
