"""Helpers of scripts/bench-close-window-load (not meant to be run alone).

    run FILE NAME                          one line for a loadtest JSON result
    closer DATA_DIR INTERVAL_S OUT.json    close the open window every INTERVAL_S until SIGTERM
    closes OUT.json                        one line for a closer's result
    medians RESULTS_DIR ROUNDS             the median rate with and without closes
"""
import json
import signal
import statistics
import sys
import time
from pathlib import Path


def run(path, name):
    r = json.load(open(path))
    v = r["verification"]
    latency = r["latency_ms"]
    verdict = "skipped" if v is None else "verified" if v["ok"] else "NOT VERIFIED"
    print(f"{name:<16} {r['throughput_per_s']:>10,.0f} transfers/s  p50 {latency['p50']:.2f} ms"
          f"  p99 {latency['p99']:.2f} ms  {sum(r['errors'].values())} errors, {verdict}")


def closer(data_dir, interval, out):
    from payswitch.client import Client

    data_dir, interval = Path(data_dir), float(interval)
    port = json.loads((data_dir / "server.json").read_text())["port"]
    client = Client(port=port, token=(data_dir / "admin.token").read_text().strip())
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    closes = []
    next_at = time.monotonic() + interval
    while not stopping:
        time.sleep(max(0.0, next_at - time.monotonic()))
        if stopping:
            break
        next_at += interval
        started = time.perf_counter()
        window = client.close_window()
        closes.append({"window_id": window.window_id, "transfers": window.transfers,
                       "ms": (time.perf_counter() - started) * 1000})
    client.close()
    ms = [c["ms"] for c in closes] or [0.0]
    json.dump({"closes": closes, "median_ms": statistics.median(ms), "max_ms": max(ms)},
              open(out, "w"), indent=1)


def closes(path):
    r = json.load(open(path))
    found = r["closes"]
    print(f"  closer: {len(found)} close_window calls, round trip median {r['median_ms']:.1f} ms,"
          f" max {r['max_ms']:.1f} ms (durable, fsync); transfers per closed window: "
          f"{', '.join(str(c['transfers']) for c in found)}")


def medians(results_dir, rounds):
    for name in ("no-closes", "with-closes"):
        rates = [json.load(open(f"{results_dir}/{name}-{n}.json"))["throughput_per_s"]
                 for n in range(1, int(rounds) + 1)]
        print(f"{name:<12} median {statistics.median(rates):>8,.0f} transfers/s over {rounds} "
              f"runs ({', '.join(f'{r:,.0f}' for r in rates)})")


if __name__ == "__main__":
    {"run": run, "closer": closer, "closes": closes, "medians": medians}[sys.argv[1]](
        *sys.argv[2:])
