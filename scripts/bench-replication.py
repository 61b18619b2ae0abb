"""Replicated against single-node, in one run, with the load generator (issue 13).

    .venv/bin/python scripts/bench-replication.py [--duration S] [--out DIR]

For each setup (a single node; a primary + standby over three local NATS servers with
sync_interval: always; the same with JetStream's default sync_interval) it starts fresh
processes, runs the load shapes against the primary and prints one line per shape: transfers/s,
p50/p99, and the CPU (cores) of the generator, of the primary and of the three NATS servers
together. Everything shares this machine's cores. Every process is stopped at the end.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the test suite's launchers, shared

from support.nats_cluster import NatsCluster  # noqa: E402
from support.ports import free_ports  # noqa: E402
from support.replicated import ADMIN_TOKEN, wait_for_role  # noqa: E402
from support.switch_process import SwitchProcess  # noqa: E402


def start_switch(data_dir: Path, *args: str) -> SwitchProcess:
    """A switch on `data_dir` (flags `args`) with the operator token the load generator is
    given, its log beside the data directory."""
    data_dir.mkdir(parents=True)
    return SwitchProcess(data_dir, extra_args=args,
                         env={"SWITCH_ADMIN_TOKEN": ADMIN_TOKEN}).start()

SHAPES = {
    "c1-p1": ["--connections", "1", "--pipeline", "1"],
    "c16-p16": ["--connections", "16", "--pipeline", "16"],
    "c4-batch8190": ["--connections", "4", "--pipeline", "1", "--batch-size", "8190"],
}
TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / TICKS_PER_S  # utime stime cutime cstime


def run_shapes(label: str, data_dir: Path, out: Path, duration_s: float,
               nats_pids: list[int]) -> None:
    for shape, args in SHAPES.items():
        result_path = out / f"{label}-{shape}.json"
        nats_before = sum(cpu_s(pid) for pid in nats_pids)
        started_s = time.monotonic()
        subprocess.run([sys.executable, "-m", "loadtest", "--data-dir", str(data_dir),
                        "--token", ADMIN_TOKEN, "--duration", str(duration_s), "--warmup", "1", "--json",
                        str(result_path), *args], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        result = json.loads(result_path.read_text())
        # over the whole run (set-up and warm-up included): an average, below the peak
        nats_cores = ((sum(cpu_s(pid) for pid in nats_pids) - nats_before)
                      / (time.monotonic() - started_s))
        verified = result["verification"] is None or result["verification"]["ok"]
        print(f"{label:<22} {shape:<13} {result['throughput_per_s']:>11,.0f}/s "
              f"p50 {result['latency_ms']['p50']:7.3f} ms p99 {result['latency_ms']['p99']:7.3f} ms"
              f"  gen {result['cpu']['generator_cores']:.0%} switch "
              f"{result['cpu']['switch_cores'] or 0:.0%} nats {nats_cores:.0%}"
              f"  {'verified' if verified else 'NOT VERIFIED'}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--no-standby", action="store_true",
                        help="run the primary alone (a standby on this same box applies every "
                             "record too, taking CPU the primary would have on its own machine)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-replication."))
    out.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} cores shared by everything; results in {out}")
    work = Path(tempfile.mkdtemp(prefix="bench-replication-data."))
    setups = [("single", None), ("replicated-sync-always", True),
              ("replicated-sync-default", False)]
    for label, sync_always in setups:
        cluster = None
        switches: list[SwitchProcess] = []
        try:
            args_extra: list[str] = []
            if sync_always is not None:
                cluster = NatsCluster(work / label / "nats", sync_always=sync_always).start()
                args_extra = ["--replication", cluster.urls]
            port_a, port_b = free_ports(2)
            primary = start_switch(work / label / "a", "--port", str(port_a), *(
                args_extra + ["--node-id", "a"] if cluster else []))
            switches.append(primary)
            if cluster:
                wait_for_role(primary, "primary")
            if cluster and not args.no_standby:
                switches.append(start_switch(work / label / "b", "--port", str(port_b),
                                             *args_extra, "--node-id", "b"))
            nats_pids = [s.process.pid for s in cluster.servers] if cluster else []
            run_shapes(label, primary.data_dir, out, args.duration, nats_pids)
        finally:
            for switch in switches:
                switch.stop(timeout_s=60)
            if cluster:
                cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
