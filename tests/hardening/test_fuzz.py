"""Hostile bytes against a live switch: a seeded fuzzer (tests/hardening/fuzz.py) sends every kind
of malformed frame over several connections at once while a well-behaved client measures its
latency. Every reply must be exactly the one the oracle predicts (a documented error code with
the right id and codec, or a success for a valid read); the switch stays up, its memory stays
bounded, not one WAL record is written (the ledger is exactly as before), and the good client's
latency stays within 2x.

Default suite: FUZZ_FRAMES (20,000) frames. The long run: `./scripts/test -m soak -k fuzz`
(FUZZ_FRAMES defaults to 2,000,000 there; FUZZ_SEED picks another seed). The control,
`./scripts/test -m soak -k control -s`: the fuzz against the same shape of valid load.
"""
import os

import pytest

from support.switch_process import SwitchProcess
from support.wire import WireClient
from support.world import switch_with_world

from hardening.fuzz import FuzzReport, run_fuzz, run_fuzz_in_child, run_valid_load
from hardening.net_support import (SHARED_CPU_FLOOR_MS, LatencyProbe, assert_within_2x,
                                   measure_latency, rss_bytes, run_niced)

ACCOUNTS = ["a-funding", "a-1", "a-2", "b-1", "b-eur"]
RSS_GROWTH_LIMIT = 50 << 20


def ledger_state(admin: WireClient) -> dict:
    stats = admin.call("stats")
    return {
        "wal_appended_seq": stats["wal"]["appended_seq"],
        "ledger": stats["ledger"],
        "accounts": admin.call("lookup_accounts", {"ids": ACCOUNTS})["accounts"],
        "windows": admin.call("list_windows")["windows"],
    }


@pytest.fixture
def world_switch(tmp_path):
    with switch_with_world(tmp_path / "data") as process:
        yield process


def fuzz_with_checks(switch: SwitchProcess, frames: int, seed: int) -> tuple[FuzzReport, dict]:
    host, port, token = switch.host, switch.port, switch.admin_token
    with WireClient(host, port) as admin:
        admin.hello("admin", token)
        before = ledger_state(admin)
        # warm up (imports, caches, allocator arenas) before the memory baseline
        report = run_fuzz(host, port, token, frames=min(2000, frames // 10), seed=seed + 1)
        baseline = measure_latency(host, port, token)
        rss_before = rss_bytes(switch.process.pid)
        probe = LatencyProbe(host, port, token)
        report = run_fuzz_in_child(host, port, token, frames=frames, seed=seed, report=report)
        under_attack = probe.result()
        rss_after = rss_bytes(switch.process.pid)
        assert switch.process.poll() is None, "the switch died"
        after = ledger_state(admin)
        figures = {"frames": report.frames, "bytes": report.bytes, "seconds": report.seconds,
                   "frames_per_s": round(report.frames / report.seconds),
                   "stream_cases": report.stream_cases, "skipped": report.skipped,
                   "kinds": dict(report.kinds), "replies": dict(report.replies),
                   "rss_before_mb": round(rss_before / 2**20, 1),
                   "rss_after_mb": round(rss_after / 2**20, 1),
                   "latency_baseline": baseline, "latency_under_fuzz": under_attack}
        print("\nfuzz figures:", figures)
        assert after == before, "the fuzz changed the ledger"
        assert rss_after - rss_before <= RSS_GROWTH_LIMIT, figures
        assert_within_2x(baseline, under_attack, SHARED_CPU_FLOOR_MS)
        assert admin.call("ping") == {}
    # the whole variety was exercised
    assert {"bad_frame", "bad_request", "unknown_op", "unauthenticated", "ok",
            "frame_too_large"} <= set(report.replies), report.replies
    return report, figures


def test_fuzz_changes_nothing_and_slows_no_one(world_switch, record_property):
    frames = int(os.environ.get("FUZZ_FRAMES", "20000"))
    seed = int(os.environ.get("FUZZ_SEED", "20261122"))
    report, figures = fuzz_with_checks(world_switch, frames, seed)
    record_property("fuzz_figures", figures)
    assert report.frames >= frames


@pytest.mark.soak
def test_fuzz_soak(world_switch, record_property):
    frames = int(os.environ.get("FUZZ_FRAMES", "2000000"))
    seed = int(os.environ.get("FUZZ_SEED", "1"))
    report, figures = fuzz_with_checks(world_switch, frames, seed)
    record_property("fuzz_figures", figures)
    assert report.frames >= frames


@pytest.mark.soak
def test_fuzz_control_a_valid_load_of_its_shape(world_switch):
    """The control: what the same shape of load, all valid, costs the good client, then the
    fuzz; hostile bytes must cost it no more than twice what legitimate traffic does."""
    host, port, token = world_switch.host, world_switch.port, world_switch.admin_token
    seconds = float(os.environ.get("CONTROL_SECONDS", "5"))
    baseline = measure_latency(host, port, token, count=2000)
    probe = LatencyProbe(host, port, token)
    frames = run_niced(run_valid_load, host, port, token, seconds)
    under_valid_load = probe.result()
    probe = LatencyProbe(host, port, token)
    report = run_fuzz_in_child(host, port, token, frames=int(os.environ.get("FUZZ_FRAMES",
                                                                              "60000")), seed=3)
    under_fuzz = probe.result()
    print("\ncontrol:", {"latency_baseline": baseline,
                         "valid_frames_per_s": round(frames / seconds),
                         "latency_under_valid_load": under_valid_load,
                         "fuzz_frames_per_s": round(report.frames / report.seconds),
                         "latency_under_fuzz": under_fuzz})
    assert under_fuzz["p99_ms"] <= 2 * under_valid_load["p99_ms"]
    assert under_fuzz["p50_ms"] <= 2 * under_valid_load["p50_ms"]
