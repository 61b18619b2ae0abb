"""The results: one summary object (written with --json) and the table printed from it."""

import json
from pathlib import Path

from payswitch.client import describe

from .histogram import Histogram
from .stats import Tick
from .verify import Verdict
from .workload import KINDS

PERCENTILES = {"p50": 50, "p90": 90, "p99": 99, "p999": 99.9, "max": 100}


def latency_ms(histogram: Histogram) -> dict:
    values = histogram.percentiles(PERCENTILES.values())
    summary = {name: round(values[p] / 1000, 3) for name, p in PERCENTILES.items()}
    summary["mean"] = round(histogram.mean_us / 1000, 3)
    return summary


def summarize(config, target, prefix: str, run_id: str, total: Tick, verdict: Verdict | None,
              cpu: dict) -> dict:
    """`cpu`: what the generator and the switch used during the load (set-up and verification
    excluded), to tell which of them limited the run, and per acknowledged transfer."""
    duration_s = total.measured_s
    per_s = (lambda n: round(n / duration_s, 1)) if duration_s > 0 else (lambda n: 0.0)
    return {
        "run_id": run_id,
        "prefix": prefix,
        "switch": describe(target.addresses),
        "mode": "open" if config.open_loop else "closed",
        "duration_s": round(duration_s, 3),
        "requests": total.requests,
        "rate_per_s": per_s(total.requests),
        "target_rate_per_s": config.rate_per_s,
        "transfers_acknowledged": total.transfers_acknowledged,
        "throughput_per_s": per_s(total.transfers_acknowledged),
        "latency_ms": latency_ms(total.all_latency()),
        "latency_ms_by_kind": {kind: {"requests": h.total, **latency_ms(h)}
                               for kind, h in zip(KINDS, total.latency) if h.total},
        "send_lag_ms": latency_ms(total.send_lag) if config.open_loop else None,
        "errors": dict(sorted(total.errors.items())),
        "retries": dict(sorted(total.retries.items())),
        "transport_failures": total.transport_failures(),
        "cpu": cpu,
        "verification": None if verdict is None else {"ok": verdict.ok,
                                                      "checks": verdict.checks},
        "config": config.for_report(),
    }


def write_json(summary: dict, path: Path) -> None:
    path.write_text(json.dumps(summary, indent=2) + "\n")


def render(summary: dict) -> str:
    c = summary["config"]
    if summary["mode"] == "open":
        loop = f"open loop at {c['rate_per_s']:,.1f} requests/s"
    else:
        loop = "closed loop"
    stop = f"{c['count']:,d} requests" if c["count"] is not None else f"{c['duration_s']:g} s"
    mix = ",".join(f"{k}={w:g}" for k, w in c["mix"].items() if w)
    lines = [
        f"payswitch load test {summary['run_id']} against {summary['switch']}, accounts "
        f"{summary['prefix']} ({c['participants']} participants x {c['accounts']})",
        f"  {loop}: {c['connections']} connections x pipeline {c['pipeline']} in "
        f"{c['processes']} process(es); batch {c['batch_size']}; codec {c['codec']}",
        f"  mix {mix}; skew {_skew(c)}; interbank {c['interbank']:g}; amounts "
        f"{c['amount_min']}-{c['amount_max']}; seed {c['seed']}",
        f"  {stop} after {c['warmup_s']:g} s warm-up, measured over {summary['duration_s']:.3f} s",
        "",
        f"{'latency':<12}{'requests':>11}" + "".join(f"{h:>10}" for h in
                                                 ("p50 ms", "p90 ms", "p99 ms", "p99.9 ms",
                                                  "max ms")),
    ]
    for kind, row in summary["latency_ms_by_kind"].items():
        lines.append(_latency_row(kind, row["requests"], row))
    lines.append(_latency_row("all", summary["requests"], summary["latency_ms"]))
    if summary["send_lag_ms"] is not None:
        lines.append(_latency_row("send lag", None, summary["send_lag_ms"]))
    lines.append("")
    rate = f"{summary['rate_per_s']:,.1f} requests/s"
    if summary["target_rate_per_s"]:
        share = summary["rate_per_s"] / summary["target_rate_per_s"]
        rate += f" (target {summary['target_rate_per_s']:,.1f}/s: {share:.1%})"
    lines.append(f"{'rate':<14}{rate}")
    lines.append(f"{'throughput':<14}{summary['throughput_per_s']:,.1f} acknowledged transfers/s "
                 f"({summary['transfers_acknowledged']:,d} transfers)")
    errors = ", ".join(f"{code} {n:,d}" for code, n in summary["errors"].items()) or "none"
    lines.append(f"{'errors':<14}{errors}")
    retries = ", ".join(f"{why} {n:,d}" for why, n in summary["retries"].items()) or "none"
    lines.append(f"{'retries':<14}{retries} (requests resent with the same ids on reconnecting)")
    cpu = summary["cpu"]
    usage = f"generator {cpu['generator_cores']:.0%}"
    if cpu["switch_cores"] is not None:
        usage += f", switch {cpu['switch_cores']:.0%}"
    lines.append(f"{'cpu':<14}{usage} of one core, over {cpu['wall_s']:.2f} s of load on "
                 f"{cpu['cores_available']} cores")
    per_transfer = f"generator {cpu['generator_cpu_us_per_transfer']} µs"
    if cpu["server_cpu_us_per_transfer"] is not None:
        per_transfer += f", switch {cpu['server_cpu_us_per_transfer']} µs (its children included)"
    lines.append(f"{'cpu/transfer':<14}{per_transfer} per acknowledged transfer, over "
                 f"{cpu['transfers_acknowledged']:,d} transfers (warm-up and drain included)")
    verification = summary["verification"]
    if verification is None:
        lines.append(f"{'verification':<14}skipped (--no-verify)")
    else:
        lines.append(f"{'verification':<14}{'passed' if verification['ok'] else 'FAILED'}")
        for check in verification["checks"]:
            mark = "ok  " if check["ok"] else "FAIL"
            lines.append(f"  {mark} {check['name']:<15}{check['detail']}")
    return "\n".join(lines)


def _skew(c: dict) -> str:
    return f"zipf s={c['zipf_exponent']:g}" if c["skew"] == "zipf" else c["skew"]


def _latency_row(name: str, requests: int | None, row: dict) -> str:
    count = "" if requests is None else f"{requests:,d}"
    return f"{name:<12}{count:>11}" + "".join(f"{row[k]:>10.3f}" for k in PERCENTILES)
