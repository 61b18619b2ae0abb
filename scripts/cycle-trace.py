#!/usr/bin/env python3
"""Where the event loop's time goes between two WAL writes, under load: a switch with its loop's
main callbacks timed (time.perf_counter_ns around Turns._next, Turns.run_group,
WalWriter._write_batch, Service.on_durable, Connection.data_received and Connection.release),
the load generator against it, then the medians per cycle (one write to the next) and of when
the cycle's steps end.

    .venv/bin/python scripts/cycle-trace.py [--connections 16] [--pipeline 1] [--duration-s 4]

For closed-loop shapes whose cycle the log's group commit sets (16 x 1 above all); the timing
itself costs about a microsecond a callback. Not for production: the timings stay in memory.
"""
import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the repository first: tests/ has a protocol/

from support.switch_process import serving_info  # noqa: E402

MAX_EVENTS = 400_000  # the last ones are kept: about 10 s of 16 x 1
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 60.0


def serve_traced(out_path: str, serve_args: list[str]) -> int:
    """In the switch's process: time the callbacks, serve, write the events out at exit."""
    import atexit
    from collections import deque

    from payswitch.switch import connection, service, turns
    from payswitch.switch.cli import main
    from payswitch.switch.storage import wal_writer

    events: deque = deque(maxlen=MAX_EVENTS)  # (start ns, end ns, what, connections taken)
    loop_thread = threading.get_ident()  # the loop runs in the main thread
    clock_ns = time.perf_counter_ns

    def timed(owner, name: str, what: str) -> None:
        function = getattr(owner, name)

        def wrapper(*args, **kwargs):
            started_ns = clock_ns()
            result = function(*args, **kwargs)
            in_loop = threading.get_ident() == loop_thread
            events.append((started_ns, clock_ns(), what if in_loop else what + "_thread", 0))
            return result
        setattr(owner, name, wrapper)

    for owner, name, what in ((turns.Turns, "_next", "turns"),
                              (wal_writer.WalWriter, "_write_batch", "write"),
                              (service.Service, "on_durable", "release_all"),
                              (connection.Connection, "data_received", "read"),
                              (connection.Connection, "release", "release")):
        timed(owner, name, what)
    run_group = turns.Turns.run_group

    def timed_group(arrivals):
        started_ns = clock_ns()
        taken, spent_s = run_group(arrivals)
        events.append((started_ns, clock_ns(), "group", taken))
        return taken, spent_s
    turns.Turns.run_group = staticmethod(timed_group)
    atexit.register(lambda: Path(out_path).write_text(json.dumps(list(events))))
    return main(["serve", *serve_args])


def cycles(events: list) -> list[dict]:
    """Per cycle (one write's start to the next): its length, the time and calls of each kind
    of callback (a group's `taken`: the connections it took requests from), and its time line
    (TIME_LINE: µs from the write's start)."""
    events.sort()
    starts = [index for index, event in enumerate(events)
              if event[2] in ("write", "write_thread")]
    found = []
    for first, last in zip(starts[len(starts) // 4:], starts[len(starts) // 4 + 1:]):
        start_ns = events[first][0]
        cycle: dict = {"cycle": (events[last][0] - start_ns) / 1000, "taken": 0}
        for started_ns, ended_ns, what, taken in events[first:last]:
            cycle[what] = cycle.get(what, 0.0) + (ended_ns - started_ns) / 1000
            cycle[what + "_calls"] = cycle.get(what + "_calls", 0) + 1
            cycle["taken"] += taken
            if what == "write" and "written" not in cycle:
                cycle["written"] = (ended_ns - start_ns) / 1000
            elif what == "release_all" and "released" not in cycle:
                cycle["released"] = (ended_ns - start_ns) / 1000
            elif what == "read" and "released" in cycle:
                cycle.setdefault("first_read", (started_ns - start_ns) / 1000)
                cycle["last_read"] = (started_ns - start_ns) / 1000
            elif what == "group":
                cycle["last_group_end"] = (ended_ns - start_ns) / 1000
        found.append(cycle)
    return found


# A cycle's time line: (key, what happened then)
TIME_LINE = (("written", "the write and fsync end"), ("released", "the releases end"),
             ("first_read", "the first request read after them"),
             ("last_read", "the last one read"), ("last_group_end", "the last group ends"),
             ("cycle", "the next write starts"))


def report(found: list[dict], shape: str) -> str:
    def median(key: str) -> float:
        return statistics.median(cycle.get(key, 0) for cycle in found)
    outside = median("cycle") - sum(median(key) for key in ("write", "release_all", "read",
                                                             "turns"))
    return "\n".join([
        f"{len(found)} cycles at {shape}, medians per cycle (one WAL write to the next):",
        f"  cycle                       {median('cycle'):7.1f} us",
        f"  write and fsync             {median('write'):7.1f} us in the loop, "
        f"{median('write_thread'):.1f} us in the WAL thread (beside the loop's work)",
        f"  releases (on_durable)       {median('release_all'):7.1f} us, of which "
        f"Connection.release {median('release'):.1f} us, {median('release_calls'):g} calls",
        f"  reads (data_received)       {median('read'):7.1f} us  {median('read_calls'):g} calls",
        f"  turns                       {median('turns'):7.1f} us  {median('turns_calls'):g} "
        f"calls, of which groups {median('group'):.1f} us: {median('group_calls'):g} groups of "
        f"{median('taken'):g} connections in all",
        f"  outside those (polls, socket reads, the timing) {outside:.1f} us",
        "time line, medians in us from the start of the write:",
        *(f"  {median(key):7.1f}  {what}" for key, what in TIME_LINE)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--pipeline", type=int, default=1)
    parser.add_argument("--duration-s", type=float, default=4.0)
    parser.add_argument("--serve-traced", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_traced is not None:
        out_path, *serve_args = args.serve_traced
        return serve_traced(out_path, serve_args)
    with tempfile.TemporaryDirectory(prefix="cycle-trace-") as work:
        data_dir, out_path = Path(work) / "data", Path(work) / "events.json"
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve-traced", str(out_path), "--data-dir",
             str(data_dir), "--port", "0", "--durability", "fsync", "--log-format", "json"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if serving_info(server, data_dir / "server.json", START_TIMEOUT_S) is None:
                raise RuntimeError(f"the switch did not start in {START_TIMEOUT_S} s "
                                   f"(exit code {server.poll()})")
            load = subprocess.run(
                [sys.executable, "-m", "loadtest", "--data-dir", str(data_dir), "--duration",
                 str(args.duration_s), "--warmup", "1", "--no-verify", "--connections",
                 str(args.connections), "--pipeline", str(args.pipeline)],
                cwd=ROOT, capture_output=True, text=True)
            if load.returncode != 0:
                print(load.stdout + load.stderr, file=sys.stderr)
                return 1
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        found = cycles(json.loads(out_path.read_text()))
    if not found:
        print("no WAL writes traced", file=sys.stderr)
        return 1
    print(report(found, f"{args.connections} x {args.pipeline}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
