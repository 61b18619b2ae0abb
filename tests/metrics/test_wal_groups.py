"""Group commit seen from outside: connections each with one request in flight over real TCP to a
real switch share fsyncs, as its stats and metrics show; and its limit is checked at start."""
import threading

import pytest

from payswitch.switch.config import Config, MAX_WAL_GROUP_WAIT_S
from support.switch_process import SwitchProcess, run_switch_once
from support.wire import WireClient
from support.world import create_world

from metrics.metrics_support import http_get, metrics_port, samples, value

CONNECTIONS = 16
ROUNDS = 30


@pytest.fixture
def switch(tmp_path):
    process = SwitchProcess(tmp_path / "data", extra_args=("--metrics-port", "0")).start()
    yield process
    process.stop()


def groups(switch) -> tuple[float, ...]:
    """(fsyncs, records they carried, fsyncs that carried one record, writes held after a
    release, writes made by the event loop or the WAL thread) since start."""
    scraped = samples(http_get(metrics_port(switch), "/metrics")[1])
    return (value(scraped, "payswitch_wal_group_requests_count"),
            value(scraped, "payswitch_wal_group_requests_sum"),
            value(scraped, "payswitch_wal_group_requests_bucket", le="1.0"),
            sum(value(scraped, "payswitch_wal_group_holds_total", outcome=outcome)
                for outcome in ("filled", "ran_out")),
            sum(value(scraped, "payswitch_wal_writes_total", thread=thread)
                for thread in ("event_loop", "wal")))


def transfers_one_at_a_time(switch, connection: int, start: threading.Barrier,
                            failures: list) -> None:
    try:
        with WireClient(switch.host, switch.port) as client:
            client.hello("admin", switch.admin_token)
            start.wait()
            for n in range(ROUNDS):
                created = client.call("transfer", {
                    "id": f"c{connection}-{n}", "debit_account": "a-funding",
                    "credit_account": "a-2", "amount": 1})
                assert created["status"] == "created", created
    except Exception as error:  # reported by the test, not lost in the thread
        failures.append(error)
        start.abort()


def test_connections_each_with_one_request_in_flight_share_fsyncs(switch):
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        create_world(admin)
        before = groups(switch)
        start = threading.Barrier(CONNECTIONS)
        failures: list = []
        clients = [threading.Thread(target=transfers_one_at_a_time,
                                    args=(switch, n, start, failures))
                   for n in range(CONNECTIONS)]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
        assert not failures, failures
        after = groups(switch)
        stats = admin.call("stats")
    fsyncs, records, alone, holds, writes = (a - b for a, b in zip(after, before))
    assert records == CONNECTIONS * ROUNDS
    assert records / fsyncs > 1  # one request per fsync would cap throughput at the fsync rate
    assert alone < fsyncs
    assert holds > 0  # the writes waited for the requests their replies brought
    assert writes == fsyncs
    assert stats["wal"]["fsyncs"] >= fsyncs
    assert stats["fsync_ms"]["count"] == stats["wal"]["fsyncs"]


@pytest.mark.parametrize("wait_s", [-0.001, MAX_WAL_GROUP_WAIT_S * 2])
def test_a_group_wait_out_of_range_is_a_configuration_error(tmp_path, wait_s):
    code, output = run_switch_once(tmp_path / "data", "--wal-group-wait-s", str(wait_s))
    assert code == 2
    assert (f"bad configuration: wal_group_wait_s must be 0..{MAX_WAL_GROUP_WAIT_S} "
            f"(not {wait_s})") in output
    assert not (tmp_path / "data").exists()


def test_group_wait_limits_are_inclusive():
    Config(wal_group_wait_s=0).validate()
    Config(wal_group_wait_s=MAX_WAL_GROUP_WAIT_S).validate()
