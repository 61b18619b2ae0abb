"""The metrics listener of a real switch process, scraped over HTTP after real requests."""
import json
import re
import shlex
import socket
import subprocess

import pytest

from support.filesystem import small_tmpfs
from support.switch_process import SwitchProcess, run_switch_once
from support.wire import WireClient
from support.world import create_world

from metrics.metrics_support import (REPO, http_get, metric_names_in, metrics_port,
                                     promtool_check, sample_names, samples, value)

INTERBANK_TRANSFERS = 5


@pytest.fixture
def switch(tmp_path):
    process = SwitchProcess(tmp_path / "data", extra_args=("--metrics-port", "0")).start()
    process.metrics_port = metrics_port(process)
    yield process
    process.stop()


def test_counters_move_with_real_requests_and_the_exposition_is_clean(switch):
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        create_world(admin)  # one intrabank funding transfer
        for n in range(INTERBANK_TRANSFERS):
            admin.call("transfer", {"id": f"t{n}", "debit_account": "a-1",
                                    "credit_account": "b-1", "amount": 1})
        refused = admin.request("transfer", {"id": "x", "debit_account": "nope",
                                             "credit_account": "b-1", "amount": 1})
        refused_code = refused["error"]["code"]
        unknown = admin.request("no_such_op", {})
        assert unknown["error"]["code"] == "unknown_op"
        status, text = http_get(switch.metrics_port, "/metrics")
        assert status == 200
        scraped = samples(text)
        assert value(scraped, "payswitch_connections") == 1
    assert value(scraped, "payswitch_requests_total", op="hello", code="ok") == 1
    assert value(scraped, "payswitch_requests_total", op="transfer", code="ok") == \
        1 + INTERBANK_TRANSFERS
    assert value(scraped, "payswitch_requests_total", op="transfer", code=refused_code) == 1
    # an op outside the contract does not become a label value of its own
    assert value(scraped, "payswitch_requests_total", op="unknown", code="unknown_op") == 1
    assert not any(("op", "no_such_op") in labels for _, labels in scraped)
    assert value(scraped, "payswitch_request_duration_seconds_count", op="transfer") == \
        2 + INTERBANK_TRANSFERS
    assert value(scraped, "payswitch_request_duration_seconds_bucket", op="transfer",
                 le="+Inf") == 2 + INTERBANK_TRANSFERS
    assert value(scraped, "payswitch_transfers_committed_total") == 1 + INTERBANK_TRANSFERS
    assert value(scraped, "payswitch_window_open_transfers") == INTERBANK_TRANSFERS
    assert value(scraped, "payswitch_wal_fsync_duration_seconds_count") > 0
    assert value(scraped, "payswitch_wal_group_requests_count") > 0
    assert value(scraped, "payswitch_wal_group_requests_sum") >= 1 + INTERBANK_TRANSFERS
    assert value(scraped, "payswitch_wal_bytes_since_snapshot") > 0
    assert value(scraped, "payswitch_snapshot_age_seconds") >= 0
    assert value(scraped, "payswitch_requests_in_flight") == 0
    assert value(scraped, "payswitch_batch_items_total", state="created") == 0
    assert value(scraped, "payswitch_ready") == 1
    assert value(scraped, "process_cpu_seconds_total") > 0
    assert all(name.startswith(("payswitch_", "process_")) for name in sample_names(scraped))
    promtool_check(text)


def test_stats_shows_percentiles_errors_by_code_and_version(switch):
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        admin.request("no_such_op", {})
        admin.request("no_such_op", {})
        stats = admin.call("stats")
    assert stats["version"] and stats["server"].endswith(stats["version"])
    assert stats["errors_by_code"] == {"unknown_op": 2}
    latency = stats["latency_ms"]
    assert latency["count"] == 3  # hello and the two refusals; stats itself is still running
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert set(stats["fsync_ms"]) == {"count", "p50", "p90", "p99", "max"}
    client = subprocess.run([str(REPO / ".venv/bin/python"), "-m", "client", "--data-dir",
                             str(switch.data_dir), "stats"], capture_output=True, text=True,
                            cwd=REPO, timeout=60)
    assert client.returncode == 0, client.stderr
    assert re.search(r"latency \(ms\)\s+count\s+p50\s+p90\s+p99\s+max\n"
                     r"requests\s+\d+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\n"
                     r"WAL fsyncs\s+\d+", client.stdout), client.stdout
    assert re.search(r"unknown_op\s+2", client.stdout), client.stdout
    assert re.search(r"uptime_s\s+[\d.]+", client.stdout), client.stdout


def test_livez_and_readyz_answer_while_serving_and_other_paths_are_404(switch):
    assert http_get(switch.metrics_port, "/livez") == (200, "ok\n")
    status, body = http_get(switch.metrics_port, "/readyz")
    assert status == 200 and json.loads(body) == {"ready": True}
    assert http_get(switch.metrics_port, "/nothing-here")[0] == 404


def test_the_dashboard_and_alert_rules_use_only_exposed_metrics(switch):
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        admin.call("ping")
    exposed = sample_names(samples(http_get(switch.metrics_port, "/metrics")[1]))
    dashboard = json.loads((REPO / "docs/grafana-dashboard.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"]
                   for target in panel.get("targets", [])]
    rules = (REPO / "docs/prometheus-alerts.yml").read_text()
    expressions += re.findall(r"expr: \|?\s*(.*?)\n\s+for:", rules, re.S)
    assert len(expressions) >= 10
    used = set().union(*map(metric_names_in, expressions))
    # a replicated node's own metrics: checked by tests/replication/test_failover.py
    used = {name for name in used if not name.startswith("payswitch_replication_")}
    assert used and used <= exposed, sorted(used - exposed)


def test_readyz_names_writes_stopped_after_the_disk_fills(tmp_path):
    import e2e.test_disk_full as disk_full  # its way to fill the log's disk
    with small_tmpfs(tmp_path / "disk", 192 * 1024) as disk:
        switch = SwitchProcess(disk / "data", extra_args=(
            "--metrics-port", "0", "--resume-min-free-bytes", str(1 << 20))).start()
        try:
            port = metrics_port(switch)
            with WireClient(switch.host, switch.port) as admin:
                admin.hello("admin", switch.admin_token)
                create_world(admin)
                disk_full.fill_until_internal(admin)
                status, body = http_get(port, "/readyz")
            assert status == 503
            assert json.loads(body)["reason"].startswith("writes_stopped: ")
            assert http_get(port, "/livez")[0] == 200
        finally:
            switch.stop()


def test_a_metrics_port_in_use_is_a_one_line_error_and_exit_1(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, output = run_switch_once(tmp_path / "data", "--metrics-port", str(port))
    assert code == 1
    assert f"switch: cannot start: metrics port 127.0.0.1:{port}: " in output
    assert "Traceback" not in output
    assert not (tmp_path / "data").exists()  # a failed start creates nothing


def test_the_announced_command_works_from_another_directory(tmp_path):
    switch = SwitchProcess(tmp_path / "data", extra_args=("--metrics-port", "0")).start()
    try:
        printed = switch.log()
        command = re.search(r"try:\s+(.*)", printed).group(1)
        assert f"http://127.0.0.1:{metrics_port(switch)}/metrics" in printed
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        result = subprocess.run(shlex.split(command), cwd=elsewhere, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert "uptime_s" in result.stdout
    finally:
        switch.stop()


def test_log_level_warning_drops_info_lines(tmp_path):
    switch = SwitchProcess(tmp_path / "data", extra_args=("--log-level", "warning")).start()
    switch.stop()
    assert switch.log_events("listening") == [] and switch.log_events("stopped") == []
    assert "payswitch listening on" in switch.log()  # the announcement is not a log line
