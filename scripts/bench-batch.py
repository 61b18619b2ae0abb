"""Measure a 1,000,000-row batch and its effect on real-time transfers; see scripts/bench-batch.

    .venv/bin/python scripts/bench-batch.py [--rows N] [--duration S] [--connections C]
        [--pipeline P] [--rate PER_S] [--batches K] [--config NAME=VALUE] [--breakdown]
        [--profile] [--results-dir DIR]

1. Starts a switch (durability fsync) on a temporary data directory.
2. (a) `python -m loadtest` single transfers without any batch: p50/p99.
3. Generates an N-row CSV (participant `bulk`: 100 funded source accounts -> 1000 destination
   accounts; one item in 1000 debits an empty account and fails with insufficient_funds) and
   uploads it in parts, K times under different batch and item ids, before any load.
4. (b) The same loadtest again (reusing its accounts) while the batches are submitted one after
   the other, so that a batch is being parsed or applied during the whole load; `get_batch` is
   polled every 0.1 s to time each batch (submit -> processing -> completed).
5. Checks the first batch's counts and that the destination balances equal the created items.

`--config NAME=VALUE` (repeatable) starts the switch through `switch.cli.serve` with that
`Config` field set, for the settings the `serve` command has no flag for (`batch_chunk_items`,
`batch_slice_s`, `batch_pause_s`, `batch_parse_nice`); `--profile` records the switch with
py-spy during the first batch; `--rate PER_S` makes the loadtest and the probe open loop (give
the loadtest room with `--pipeline`, e.g. 64). Results (JSON of both loadtests, the switch log,
the summary) go to DIR.
"""
import argparse
import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from payswitch.client import Client  # noqa: E402

SOURCES, DESTINATIONS = 100, 1000
PART_BYTES = 1_000_000  # under the default 1 MiB frame
POLL_S = 0.1


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of each loadtest")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--pipeline", type=int, default=1)
    parser.add_argument("--rate", type=int, metavar="PER_S",
                        help="open loop: single transfers per second on a fixed schedule (the "
                             "loadtest's --rate, and the probe's), latency from the intended "
                             "send time; default: closed loop")
    parser.add_argument("--batches", type=int, default=3,
                        help="batches uploaded beforehand and run one after the other during (b)")
    parser.add_argument("--config", action="append", default=[], metavar="NAME=VALUE",
                        help="a Config field of the switch without a serve flag (repeatable), "
                             "e.g. --config batch_slice_s=0.001")
    parser.add_argument("--serve-arg", action="append", default=[], metavar="ARG",
                        help="extra argument for `switch serve` (repeatable), e.g. "
                             "--serve-arg=--snapshot-every-bytes=1099511627776")
    parser.add_argument("--profile", action="store_true", help="py-spy record during batch 0")
    parser.add_argument("--breakdown", action="store_true",
                        help="(c): latency of single transfers by batch phase, from a probe")
    parser.add_argument("--results-dir", type=Path)
    return parser.parse_args(argv)


def serve_with_config(settings: list[str], rest: list[str]) -> int:
    """`python -m switch serve REST` with the `Config` fields of SETTINGS (NAME=VALUE) set."""
    from payswitch.switch import cli as switch_cli
    from payswitch.switch.config import Config
    args = switch_cli.build_parser().parse_args(["serve", *rest])
    for setting in settings:
        name, value = setting.split("=", 1)
        setattr(args, name, type(getattr(Config, name))(value))
    return switch_cli.serve(args)


class Switch:
    def __init__(self, work: Path, settings: list[str], extra: list[str]):
        self.data_dir = work / "data"
        self.log_path = work / "switch.log"
        serve = ["--data-dir", str(self.data_dir), "--port", "0", "--durability", "fsync",
                 "--log-format", "json", *extra]
        command = [sys.executable, "-m", "switch", "serve", *serve]
        if settings:
            command = [sys.executable, __file__, "--serve-with-config", *settings, "--", *serve]
        # Unbuffered, so that the log's snapshot lines can be read while the switch runs.
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=open(self.log_path, "wb"),
                                        stderr=subprocess.STDOUT,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        info_path = self.data_dir / "server.json"
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"switch exited:\n{self.log_path.read_text()}")
            try:
                info = json.loads(info_path.read_text())
                if info["pid"] == self.process.pid:
                    break
            except (OSError, ValueError, KeyError):
                pass
            if time.monotonic() > deadline:
                raise SystemExit("switch did not start")
            time.sleep(0.05)
        self.port = info["port"]
        self.pid = self.process.pid
        self.admin_token = (self.data_dir / "admin.token").read_text().strip()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(120)


def setup_bulk(admin: Client) -> str:
    [participant] = admin.create_participants([{"id": "bulk", "name": "Bulk sender"}])
    accounts = [{"id": "bulk-fund", "participant": "bulk", "currency": "USD",
                 "overdraft_limit": None},
                {"id": "bulk-empty", "participant": "bulk", "currency": "USD"}]
    accounts += [{"id": f"bulk-s{n}", "participant": "bulk", "currency": "USD"}
                 for n in range(SOURCES)]
    accounts += [{"id": f"bulk-d{n}", "participant": "bulk", "currency": "USD"}
                 for n in range(DESTINATIONS)]
    for start in range(0, len(accounts), 8000):
        results = admin.create_accounts(accounts[start:start + 8000])
        assert all(r.ok for r in results), results
    funding = [{"id": f"bulk-fund-s{n}", "debit_account": "bulk-fund",
                "credit_account": f"bulk-s{n}", "amount": 10**15} for n in range(SOURCES)]
    assert all(r.ok for r in admin.create_transfers(funding))
    return participant.token


def batch_rows(rows: int, tag: str):
    for n in range(rows):
        debit = "bulk-empty" if n % 1000 == 999 else f"bulk-s{n % SOURCES}"
        yield (f"{tag}-{n}", debit, f"bulk-d{n % DESTINATIONS}", 1 + n % 997, "USD", "")


def batch_csv(rows: int, tag: str) -> tuple[bytes, int, int]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "debit_account", "credit_account", "amount", "currency", "reference"])
    total = 0
    for row in batch_rows(rows, tag):
        writer.writerow(row)
        total += row[3]
    return out.getvalue().encode(), rows, total


def upload(client: Client, batch_id: str, content: bytes) -> int:
    parts = [content[i:i + PART_BYTES] for i in range(0, len(content), PART_BYTES)]
    for seq, part in enumerate(parts):
        client.upload_batch_part(batch_id, seq, part)
    return len(parts)


def run_loadtest(switch: Switch, args, out: Path, reuse: str | None) -> dict:
    command = [sys.executable, "-m", "loadtest", "--port", str(switch.port), "--data-dir",
               str(switch.data_dir), "--connections", str(args.connections), "--pipeline",
               str(args.pipeline), "--duration", str(args.duration), "--warmup", "1",
               "--json", str(out)]
    if reuse:
        command += ["--reuse", reuse]
    if args.rate:
        command += ["--rate", str(args.rate)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if not out.exists():
        raise SystemExit(f"loadtest failed ({done.returncode}):\n{done.stderr}")
    return json.loads(out.read_text())


class BatchRunner(threading.Thread):
    """Submits the uploaded batches one after the other, timing each from get_batch."""

    def __init__(self, port: int, token: str, batches: list[tuple[str, int, int]],
                 stop: threading.Event):
        super().__init__(daemon=True)
        self.client = Client(port=port, participant="bulk", token=token, timeout_s=120)
        self.batches = batches
        self.stop_event = stop
        self.timings: list[dict] = []
        self.samples: list[tuple[float, str, int]] = []  # batch 0: (t, state, processed)
        self.active: list[tuple[float, float]] = []  # (start, end) monotonic, per batch

    def run(self) -> None:
        for number, (batch_id, count, total) in enumerate(self.batches):
            if self.stop_event.is_set():
                break
            submitted = time.monotonic()
            self.client.submit_batch(batch_id, "csv", control_count=count, control_sum=total,
                                     mode="partial")
            processing = None
            while True:
                summary = self.client.request("get_batch", {"batch_id": batch_id})
                now = time.monotonic()
                if number == 0:
                    self.samples.append((now - submitted, summary["state"],
                                         summary["processed"]))
                if processing is None and summary["state"] != "received":
                    processing = now
                if summary["state"] in ("completed", "rejected"):
                    break
                time.sleep(POLL_S)
            self.active.append((submitted, now))
            self.timings.append({"batch_id": batch_id, "state": summary["state"],
                                 "total": summary["total"], "created": summary["created"],
                                 "failed": summary["failed"],
                                 "parse_s": round(processing - submitted, 2),
                                 "apply_s": round(now - processing, 2),
                                 "elapsed_s": round(now - submitted, 2),
                                 "items_per_s": round(summary["total"] / (now - submitted)),
                                 "apply_items_per_s": round(summary["total"] /
                                                            max(now - processing, 1e-9))})
        self.client.close()


class Probe(threading.Thread):
    """A probe like the loadtest's shape (C connections, single transfers between funded
    accounts), recording (send time, latency) of every request, so latency can be split by what
    the batch was doing at the time. Closed loop (pipeline 1), or with `rate` open loop: each
    connection sends on a fixed schedule, pipelined, and a request's latency counts from when
    it was due, so a stall delays (and is charged to) every request due during it."""

    def __init__(self, port: int, token: str, connections: int, stop: threading.Event,
                 rate: int | None = None):
        super().__init__(daemon=True)
        self.port, self.token, self.connections = port, token, connections
        self.interval_s = connections / rate if rate else 0.0
        self.stop_event = stop
        self.samples: list[tuple[float, float]] = []

    def run(self) -> None:
        import asyncio
        import uvloop
        from payswitch.client import AsyncClient

        async def send(client, n: int, counter: int, started: float) -> None:
            result = await client.transfer(f"probe-{n}-{counter}", f"probe-a{n}",
                                           f"probe-b{n}", 1)
            assert result.ok, result
            self.samples.append((started, time.time() - started))

        async def worker(n: int) -> None:
            async with await AsyncClient.connect(port=self.port, participant="probe",
                                                 token=self.token, timeout_s=60) as client:
                counter = 0
                due = time.time()
                in_flight: set[asyncio.Task] = set()
                while not self.stop_event.is_set():
                    counter += 1
                    if not self.interval_s:
                        await send(client, n, counter, time.time())
                        continue
                    # Open loop: requests are pipelined, none waits for an earlier reply.
                    due += self.interval_s
                    await asyncio.sleep(max(0.0, due - time.time()))
                    task = asyncio.create_task(send(client, n, counter, due))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                await asyncio.gather(*in_flight)

        async def main() -> None:
            await asyncio.gather(*(worker(n) for n in range(self.connections)))

        uvloop.run(main())


def setup_probe(admin: Client, connections: int) -> str:
    [participant] = admin.create_participants([{"id": "probe", "name": "Latency probe"}])
    accounts = [{"id": f"probe-a{n}", "participant": "probe", "currency": "USD",
                 "overdraft_limit": None} for n in range(connections)]
    accounts += [{"id": f"probe-b{n}", "participant": "probe", "currency": "USD"}
                 for n in range(connections)]
    assert all(r.ok for r in admin.create_accounts(accounts))
    return participant.token


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def snapshot_windows(log_path: Path) -> list[tuple[float, float]]:
    """(start, end) epoch seconds of each background snapshot, from the switch log."""
    import datetime
    started, windows = None, []
    for line in log_path.read_text(errors="replace").splitlines():
        if '"snapshot_' not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        when = datetime.datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
        if record["event"] == "snapshot_started":
            started = when.timestamp()
        elif record["event"] in ("snapshot_published", "snapshot_failed") and started:
            windows.append((started, when.timestamp()))
            started = None
    if started is not None:  # still running
        windows.append((started, float("inf")))
    return windows


def breakdown(switch: Switch, args, bulk_token: str, results: Path) -> dict:
    """(c): the probe runs 4 s alone, then during one more batch (epoch-timed phases)."""
    admin = Client(port=switch.port, token=switch.admin_token, timeout_s=120)
    probe_token = setup_probe(admin, args.connections)
    admin.close()
    bulk = Client(port=switch.port, participant="bulk", token=bulk_token, timeout_s=120)
    content, count, total = batch_csv(args.rows, "c")
    upload(bulk, "bench-c", content)
    del content
    stop = threading.Event()
    probe = Probe(switch.port, probe_token, args.connections, stop, args.rate)
    probe.start()
    time.sleep(5.0)
    submitted = time.time()
    bulk.submit_batch("bench-c", "csv", control_count=count, control_sum=total, mode="partial")
    processing = None
    while (summary := bulk.request("get_batch", {"batch_id": "bench-c"}))["state"] not in \
            ("completed", "rejected"):
        if processing is None and summary["state"] == "processing":
            processing = time.time()
        time.sleep(POLL_S)
    completed = time.time()
    time.sleep(1.0)
    stop.set()
    probe.join(60)
    bulk.close()
    snapshots = snapshot_windows(switch.log_path)

    def in_snapshot(t: float) -> bool:
        return any(a <= t <= b for a, b in snapshots)

    phases = {"no batch": [], "parse+validate": [], "apply (chunks)": [],
              "during a snapshot": []}
    warm = submitted - 4.0
    for started, latency in probe.samples:
        if in_snapshot(started):
            phases["during a snapshot"].append(latency)
        elif warm <= started < submitted:
            phases["no batch"].append(latency)
        elif submitted <= started < (processing or completed):
            phases["parse+validate"].append(latency)
        elif processing and processing <= started < completed:
            phases["apply (chunks)"].append(latency)
    found = {name: {"requests": len(v), "p50_ms": round(percentile(v, 0.5) * 1000, 2),
                    "p99_ms": round(percentile(v, 0.99) * 1000, 2),
                    "max_ms": round(max(v, default=float("nan")) * 1000, 2)}
             for name, v in phases.items()}
    found["batch"] = {"parse_s": round((processing or completed) - submitted, 2),
                      "apply_s": round(completed - (processing or completed), 2)}
    (results / "breakdown.json").write_text(json.dumps(found, indent=2) + "\n")
    return found


def overlap(active: list[tuple[float, float]], start: float, end: float) -> float:
    covered = sum(max(0.0, min(e, end) - max(s, start)) for s, e in active)
    return covered / (end - start)


def verify(admin: Client, batch_ids: list[str], rows: int) -> str:
    """Each batch's counts, and the destinations hold exactly what their created items moved."""
    failing = sum(1 for n in range(rows) if n % 1000 == 999)
    expected = [0] * DESTINATIONS
    for batch_id in batch_ids:
        summary = admin.request("get_batch", {"batch_id": batch_id})
        assert (summary["state"], summary["created"], summary["failed"]) == \
            ("completed", rows - failing, failing), summary
        for _, debit, credit, amount, _, _ in batch_rows(rows, batch_id[len("bench-"):]):
            if debit != "bulk-empty":
                expected[int(credit[len("bulk-d"):])] += amount
    found = {a.id: a.balance for a in admin.lookup_accounts(
        [f"bulk-d{n}" for n in range(DESTINATIONS)])}
    assert [found[f"bulk-d{n}"] for n in range(DESTINATIONS)] == expected, "balances differ"
    return (f"verified {len(batch_ids)} batch(es): {rows - failing:,} created and {failing:,} "
            f"insufficient_funds each; destination balances equal the created items")


def main(argv=None) -> int:
    if argv is None and "--serve-with-config" in sys.argv:
        at, end = sys.argv.index("--serve-with-config"), sys.argv.index("--")
        return serve_with_config(sys.argv[at + 1:end], sys.argv[end + 1:])
    args = parse_args(argv)
    results = args.results_dir or Path(tempfile.mkdtemp(prefix="bench-batch."))
    results.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-batch-data."))
    switch = Switch(work, args.config, args.serve_arg)
    summary: dict = {"machine": {"cpus": os.cpu_count(), "note": "switch, loadtest and batch "
                                 "client share these cores"},
                     "rows": args.rows, "config": args.config, "serve_args": args.serve_arg,
                     "loadtest": {"connections": args.connections, "pipeline": args.pipeline,
                                  "rate_per_s": args.rate, "duration_s": args.duration}}
    try:
        print(f"switch pid {switch.pid} on port {switch.port} (fsync), {os.cpu_count()} cores "
              f"shared by switch, loadtest and batch client; results in {results}", flush=True)
        print("(a) loadtest without a batch ...", flush=True)
        base = run_loadtest(switch, args, results / "loadtest-without-batch.json", None)
        admin = Client(port=switch.port, token=switch.admin_token, timeout_s=120)
        token = setup_bulk(admin)
        bulk = Client(port=switch.port, participant="bulk", token=token, timeout_s=120)
        batches = []
        for number in range(args.batches):
            tag = f"b{number}"
            started = time.monotonic()
            content, count, total = batch_csv(args.rows, tag)
            parts = upload(bulk, f"bench-{tag}", content)
            batches.append((f"bench-{tag}", count, total))
            print(f"uploaded batch bench-{tag}: {count:,} rows, {len(content):,} bytes in "
                  f"{parts} parts ({time.monotonic() - started:.1f} s incl. generation)",
                  flush=True)
        bulk.close()
        print("(b) loadtest while the batches run ...", flush=True)
        stop = threading.Event()
        runner = BatchRunner(switch.port, token, batches, stop)
        load_start = time.monotonic()
        runner.start()
        profiler = None
        if args.profile:
            time.sleep(0.5)
            # Collapsed stacks per thread, only samples where the thread holds the GIL: who
            # keeps the event loop thread from running.
            profiler = subprocess.Popen(
                ["py-spy", "record", "--pid", str(switch.pid), "--duration", "10", "--rate",
                 "200", "--threads", "--gil", "--format", "raw", "--output",
                 str(results / "py-spy-gil.txt")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        loaded = run_loadtest(switch, args, results / "loadtest-with-batch.json",
                              base["prefix"])
        load_end = time.monotonic()
        stop.set()
        runner.join()
        if profiler is not None:
            profiler.wait(60)
        covered = overlap(runner.active, load_start, load_end)
        snapshots_during_load = len(snapshot_windows(switch.log_path))
        print(verify(admin, [t["batch_id"] for t in runner.timings], args.rows), flush=True)
        admin.close()
        first = runner.timings[0]
        p99_without, p99_with = base["latency_ms"]["p99"], loaded["latency_ms"]["p99"]
        summary.update({
            "batch": first, "batches_during_load": runner.timings,
            "batch_0_progress": runner.samples,
            "loadtest_without_batch": _brief(base), "loadtest_with_batch": _brief(loaded),
            "loadtest_time_with_a_batch_running": round(covered, 3),
            "p99_ratio": round(p99_with / p99_without, 2),
            "snapshots_by_end_of_b": snapshots_during_load,
        })
        (results / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        print()
        print(f"batch of {first['total']:,} rows: {first['items_per_s']:,} items/s end to end "
              f"({first['elapsed_s']} s: parse+validate {first['parse_s']} s, apply "
              f"{first['apply_s']} s = {first['apply_items_per_s']:,} items/s)")
        for timing in runner.timings[1:]:
            print(f"  then {timing['batch_id']}: {timing['items_per_s']:,} items/s "
                  f"({timing['elapsed_s']} s)")
        print(f"{'single transfers':<26}{'transfers/s':>12}{'p50 ms':>9}{'p99 ms':>9}"
              f"{'p99.9 ms':>10}{'max ms':>9}{'sw cpu':>8}")
        for name, run in (("without batch", base), ("with batch running", loaded)):
            lat = run["latency_ms"]
            cores = run["cpu"]["switch_cores"]
            print(f"{name:<26}{run['throughput_per_s']:>12,.0f}{lat['p50']:>9.2f}"
                  f"{lat['p99']:>9.2f}{lat['p999']:>10.2f}{lat['max']:>9.2f}"
                  f"{'-' if cores is None else f'{cores:.0%}':>8}")
        print(f"p99 with / without: {p99_with / p99_without:.2f}x (limit 3x); a batch was "
              f"running during {covered:.0%} of the loaded run; {snapshots_during_load} "
              f"background snapshot(s) so far")
        if args.breakdown:
            print("(c) probe latency by batch phase ...", flush=True)
            found = breakdown(switch, args, token, results)
            print(f"{'single transfers (probe)':<26}{'requests':>10}{'p50 ms':>9}{'p99 ms':>9}"
                  f"{'max ms':>9}")
            for name, row in found.items():
                if name != "batch":
                    print(f"{name:<26}{row['requests']:>10}{row['p50_ms']:>9.2f}"
                          f"{row['p99_ms']:>9.2f}{row['max_ms']:>9.2f}")
            print(f"batch bench-c: parse+validate {found['batch']['parse_s']} s, apply "
                  f"{found['batch']['apply_s']} s")
        return 0
    finally:
        switch.stop()
        shutil.copy(switch.log_path, results / "switch.log")
        shutil.rmtree(work, ignore_errors=True)


def _brief(run: dict) -> dict:
    return {"throughput_per_s": run["throughput_per_s"], "latency_ms": run["latency_ms"],
            "errors": run["errors"], "cpu": run["cpu"],
            "verified": None if run["verification"] is None else run["verification"]["ok"]}


if __name__ == "__main__":
    sys.exit(main())
