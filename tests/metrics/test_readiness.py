"""Readiness and the hot-path histograms, in-process, over the listener's real HTTP socket."""
import asyncio
import json
import socket
import subprocess
import sys
import time

import pytest

from payswitch.switch.config import Config
from payswitch.switch.health import Readiness
from payswitch.switch.metrics import GROUP_RECORDS_BUCKETS, Histogram
from payswitch.switch.metrics_server import MetricsServer
from payswitch.switch.service import Service
from payswitch.switch.state import SwitchState
from payswitch.switch.storage.recovery import RecoveryProgress, recover
from payswitch.switch.storage.wal_writer import WalWriter
from support.switch_process import SwitchProcess

from metrics.metrics_support import REPO, http_get, promtool_check, samples, value


@pytest.fixture
def listener():
    readiness = Readiness()
    server = MetricsServer("127.0.0.1", 0, 5.0, readiness, "test")
    server.start()
    yield server, readiness
    server.close()


def test_readyz_reports_recovery_progress_until_recovered_then_starting(listener):
    server, readiness = listener
    readiness.recovery.records_replayed = 8192
    readiness.recovery.bytes_replayed = 1_000_000
    readiness.recovery.bytes_total = 4_000_000
    status, body = http_get(server.port, "/readyz")
    assert status == 503
    assert json.loads(body) == {"ready": False, "reason": "recovering",
                                "records_replayed": 8192, "bytes_replayed": 1_000_000,
                                "bytes_total": 4_000_000}
    assert http_get(server.port, "/livez") == (200, "ok\n")
    status, text = http_get(server.port, "/metrics")
    scraped = samples(text)
    assert value(scraped, "payswitch_ready") == 0
    assert value(scraped, "payswitch_recovery_records_replayed") == 8192
    assert value(scraped, "payswitch_build_info", version="test") == 1
    promtool_check(text)
    readiness.recovered = True
    status, body = http_get(server.port, "/readyz")
    assert status == 503 and json.loads(body) == {"ready": False, "reason": "starting"}


async def test_readyz_follows_a_live_service_through_shutdown_and_writes_stopped(tmp_path,
                                                                               listener):
    server, readiness = listener
    config = Config(data_dir=tmp_path / "data")
    config.wal_dir.mkdir(parents=True)
    loop = asyncio.get_running_loop()
    service = Service(config, loop, SwitchState(), lambda on_durable, on_failure, loop_has_work: WalWriter(
        config.wal_dir, 1, config.wal_segment_bytes, True, on_durable, on_failure), "token")
    readiness.recovered = True
    readiness.service = service
    try:
        assert http_get(server.port, "/readyz") == (200, '{"ready": true}\n')
        assert value(samples(http_get(server.port, "/metrics")[1]), "payswitch_connections") == 0
        service.shutting_down = True  # as the server's shutdown sets it
        status, body = http_get(server.port, "/readyz")
        assert status == 503 and json.loads(body) == {"ready": False, "reason": "shutting_down"}
        service.shutting_down = False
        service.stop_writes("the disk went away")
        status, body = http_get(server.port, "/readyz")
        assert status == 503 and json.loads(body) == {
            "ready": False, "reason": "writes_stopped: the disk went away"}
        for _ in range(1000):  # let the durable-state reload that stop_writes began finish
            if not service.reloading_durable_state:
                break
            await asyncio.sleep(0.01)
    finally:
        service.wal.close()


def test_a_slow_client_does_not_hold_the_listener_past_its_timeout():
    readiness = Readiness()
    server = MetricsServer("127.0.0.1", 0, 0.5, readiness, "test")
    server.start()
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as slow:
            slow.sendall(b"GET /livez HTTP/1.1\r\n")  # and never the end of its headers
            assert http_get(server.port, "/livez") == (200, "ok\n")
    finally:
        server.close()


def switch_killed_after(data_dir, transfers: int) -> SwitchProcess:
    """A switch that took `transfers` from the load generator and was then killed: no shutdown
    snapshot, so a restart replays all of them. In JSON, so that each is a record of its own
    (pipelined MessagePack transfers would be logged in groups)."""
    switch = SwitchProcess(data_dir, extra_args=("--durability", "none")).start()
    try:
        loaded = subprocess.run(
            [sys.executable, "-m", "loadtest", "--data-dir", str(switch.data_dir), "--count",
             str(transfers), "--connections", "4", "--pipeline", "64", "--warmup", "0",
             "--codec", "json", "--no-verify"], cwd=REPO, capture_output=True, text=True, timeout=300)
        assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    finally:
        switch.kill()
    return switch


def test_recovery_reports_its_progress_as_it_replays(tmp_path):
    switch = switch_killed_after(tmp_path / "data", transfers=10_000)
    progress = RecoveryProgress()
    recovered = recover(switch.data_dir / "wal", switch.data_dir / "snapshots",
                        read_only=True, progress=progress)
    assert recovered.records_replayed > 10_000
    assert progress.records_replayed == recovered.records_replayed
    assert progress.bytes_replayed == progress.bytes_total == recovered.log_bytes_read


def test_histogram_buckets_and_percentiles():
    histogram = Histogram(GROUP_RECORDS_BUCKETS)
    assert histogram.percentiles() == {"count": 0, "p50": None, "p90": None, "p99": None,
                                       "max": None}
    for records in [1] * 50 + [3] * 40 + [100] * 9 + [5000]:
        histogram.observe(records)
    assert histogram.counts[0] == 50  # le=1 holds the 1s (a value on a bound is in it)
    assert histogram.counts[2] == 40  # le=4
    assert histogram.counts[-1] == 1  # +Inf
    assert histogram.percentiles() == {"count": 100, "p50": 1, "p90": 4, "p99": 128,
                                       "max": 5000}
    assert histogram.sum == 50 + 120 + 900 + 5000


def test_readyz_says_recovering_while_a_real_switch_replays_a_long_log(tmp_path):
    """Polls /readyz of a restarting switch; a fast machine may finish the replay before the
    first poll, so `recovering` is required only if seen before ready (the readiness logic
    itself is pinned above, in-process)."""
    switch = switch_killed_after(tmp_path / "data", transfers=40_000)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "switch", "serve", "--data-dir", str(switch.data_dir), "--port",
         "0", "--log-format", "json", "--metrics-port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    try:
        seen = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                status, body = http_get(port, "/readyz")
            except OSError:
                assert process.poll() is None, "the switch exited"
                time.sleep(0.005)
                continue
            seen.append(json.loads(body))
            if status == 200:
                break
        assert seen and seen[-1] == {"ready": True}, seen[-5:]
        recovering = [s for s in seen if s.get("reason") == "recovering"]
        for report in recovering:
            assert report["bytes_total"] is None or \
                0 <= report["bytes_replayed"] <= report["bytes_total"]
        assert [r["records_replayed"] for r in recovering] == \
            sorted(r["records_replayed"] for r in recovering)
        print(f"/readyz answered {len(seen)} times, {len(recovering)} of them recovering")
    finally:
        process.terminate()
        process.wait(30)
