"""The event stream through faults, over real processes: a kill -9 of the switch under load, a
NATS server stopped while transfers flow, and a backlog that fills while NATS is away. After
each, the stream holds every committed transfer exactly once, in order, without a gap."""
import collections
import itertools
import signal
import threading

from support.events_stream import (FAST_RETRY, assert_gap_free, read_events,
                                   wait_for_events_published)
from support.load import TransferSender
from support.processes import suspend
from support.switch_process import SwitchProcess
from support.waiting import wait_until
from support.wire import WireClient
from support.world import create_world, lookup_all

SMALL_SNAPSHOTS = ("--snapshot-every-bytes", str(256 << 10))  # so that snapshots happen mid-load
sender_names = itertools.count()



class Load:
    """Transfer senders (support.load) on their own threads, until stopped."""

    def __init__(self, switch: SwitchProcess, senders: int = 2):
        self.stop_event = threading.Event()
        self.threads = [TransferSender(switch.host, switch.port, switch.admin_token,
                                       f"ev{next(sender_names)}", self.stop_event)
                        for _ in range(senders)]
        for thread in self.threads:
            thread.start()

    def acked(self) -> int:
        return sum(len(thread.acked) for thread in self.threads)

    def stop(self) -> tuple[set[str], set[str]]:
        """Stops the senders; (acknowledged ids, sent ids)."""
        self.stop_event.set()
        for thread in self.threads:
            thread.join(30)
        return ({transfer_id for thread in self.threads for transfer_id in thread.acked},
                set().union(*(thread.sent_ids for thread in self.threads)))


def stats(switch: SwitchProcess) -> dict:
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        return admin.call("stats")


def assert_every_transfer_once(switch: SwitchProcess, urls: str, acked: set[str],
                               sent: set[str]) -> list[dict]:
    """The stream is gap-free and holds each stored transfer exactly once, the acknowledged ones
    among them, and nothing else; returns its events."""
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        wait_for_events_published(admin)
        stored = lookup_all(admin, sent | {"fund-a-1"})
        ledger_transfers = admin.call("stats")["ledger"]["transfers"]
    events = read_events(urls)
    assert_gap_free(events)
    created = collections.Counter(body["id"] for _, _, body in events
                                  if body["type"] == "transfer.created")
    assert not [tid for tid, count in created.items() if count > 1], "published twice"
    assert acked <= set(created), f"acknowledged, not published: {sorted(acked - set(created))[:5]}"
    assert set(created) == set(stored)
    assert len(created) == ledger_transfers
    return [body for _, _, body in events]


def test_kill_9_under_load_then_restart_publishes_every_transfer_once(tmp_path, nats_server):
    switch = SwitchProcess(tmp_path / "data", extra_args=(
        "--events", nats_server.urls, *FAST_RETRY, *SMALL_SNAPSHOTS)).start()
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        create_world(admin)
    load = Load(switch, senders=1)
    try:
        # mid-load: events published, and a snapshot taken (it waits for its events)
        wait_until(lambda: stats(switch)["snapshots"]["published"] >= 1 and load.acked() > 2000,
                   "a snapshot and 2,000 transfers under load")
        switch.kill()
    finally:
        acked, sent = load.stop()
    switch.start()
    try:
        bodies = assert_every_transfer_once(switch, nats_server.urls, acked, sent)
    finally:
        switch.stop()
    assert len(bodies) > 2000


def test_a_nats_outage_under_load_is_caught_up_without_gap_or_duplicate(tmp_path, nats_server):
    switch = SwitchProcess(tmp_path / "data", extra_args=(
        "--events", nats_server.urls, *FAST_RETRY, *SMALL_SNAPSHOTS,
        "--events-max-backlog", "10000000")).start()
    server = nats_server.servers[0]
    try:
        with WireClient(switch.host, switch.port) as admin:
            admin.hello("admin", switch.admin_token)
            create_world(admin)
        load = Load(switch)
        try:
            wait_until(lambda: stats(switch)["events"]["published"] > 1000,
                       "1,000 events published")
            server.stop()
            wait_until(lambda: not stats(switch)["events"]["connected"], "NATS gone")
            acked_during_outage = load.acked() + 1000
            wait_until(lambda: load.acked() > acked_during_outage,
                       "1,000 more transfers while NATS is away")
            assert stats(switch)["events"]["backlog"] > 0
            server.start()
            nats_server.wait_healthy()
            published = stats(switch)["events"]["published"]
            wait_until(lambda: stats(switch)["events"]["published"] > published + 1000,
                       "publishing resumed under load")
        finally:
            acked, sent = load.stop()
        assert_every_transfer_once(switch, nats_server.urls, acked, sent)
    finally:
        switch.stop()
    assert switch.log_events("events_publish_failed")
    assert switch.log_events("events_publishing_resumed")


def test_a_full_backlog_refuses_writes_unavailable_until_it_drains(tmp_path, nats_server):
    switch = SwitchProcess(tmp_path / "data", extra_args=(
        "--events", nats_server.urls, *FAST_RETRY, "--events-max-backlog", "20")).start()
    server = nats_server.servers[0]
    try:
        with WireClient(switch.host, switch.port) as admin:
            admin.hello("admin", switch.admin_token)
            create_world(admin)
            wait_for_events_published(admin)
            server.stop()
            wait_until(lambda: not admin.call("stats")["events"]["connected"], "NATS gone")
            accepted, refusal = [], None
            for n in range(40):
                reply = admin.request("transfer", {"id": f"t-{n}", "debit_account": "a-1",
                                                   "credit_account": "b-1", "amount": 1})
                if not reply["ok"]:
                    refusal = reply["error"]
                    break
                accepted.append(f"t-{n}")
            assert refusal is not None and refusal["code"] == "unavailable", refusal
            assert "PAYSWITCH_EVENTS is unreachable" in refusal["message"]
            assert "events_max_backlog 20" in refusal["message"]
            assert len(accepted) == 20  # the backlog: the world's events were published
            assert admin.call("lookup_accounts", {"ids": ["a-1"]})["accounts"]  # reads go on
            server.start()
            nats_server.wait_healthy()

            def taken_again() -> bool:
                reply = admin.request("transfer", {"id": "after", "debit_account": "a-1",
                                                   "credit_account": "b-1", "amount": 1})
                return reply["ok"]
            wait_until(taken_again, "writes taken again once the backlog drained")
            events = admin.call("stats")["events"]
            assert events["writes_refused"] >= 1 and not events["writes_paused"]
        accepted.append("after")
        assert_every_transfer_once(switch, nats_server.urls, set(accepted), set(accepted))
    finally:
        switch.stop()
    assert switch.log_events("writes_paused_for_events")
    assert switch.log_events("writes_resumed_after_events")


def test_events_unpublished_at_a_kill_9_are_regenerated_and_no_snapshot_skips_them(
        tmp_path, nats_server):
    """NATS is away while transfers commit: their events wait, and so does the snapshot built
    meanwhile (publishing it would leave the log without their records). A kill -9, then NATS
    and the switch back: every event is regenerated from the log and published once."""
    switch = SwitchProcess(tmp_path / "data", extra_args=(
        "--events", nats_server.urls, *FAST_RETRY, "--snapshot-every-bytes", str(32 << 10))).start()
    server = nats_server.servers[0]
    accepted = []
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        create_world(admin)
        published = wait_for_events_published(admin)["last_published_seq"]
        server.stop()
        wait_until(lambda: not admin.call("stats")["events"]["connected"], "NATS gone")
        for n in itertools.count():
            accepted.append(f"t-{n}")
            admin.call("create_transfers", {"transfers": [
                {"id": f"t-{n}", "debit_account": "a-1", "credit_account": "b-1", "amount": 1,
                 "reference": "x" * 200}]})
            snapshots = admin.call("stats")["snapshots"]
            if snapshots["waiting_for_events_seq"] is not None:
                break
        assert snapshots["published"] == 0 and snapshots["last_seq"] == 0
    assert switch.log_events("snapshot_waits_for_events")
    switch.kill()
    server.start()
    nats_server.wait_healthy()
    switch.start()
    try:
        [recovery] = switch.log_events("recovery_complete")[-1:]
        assert recovery["snapshot_seq"] == 0  # the snapshot that waited was never published
        bodies = assert_every_transfer_once(switch, nats_server.urls, set(accepted),
                                            set(accepted))
        assert stats(switch)["events"]["published"] == len(bodies) - published
    finally:
        switch.stop()


def test_a_nats_server_that_stops_answering_is_waited_out_by_the_ack_timeout(tmp_path,
                                                                             nats_server):
    """SIGSTOP: the connection stays open but nothing is acknowledged. The events wait past
    --events-ack-timeout-s, are sent again after the stream's end once it answers, once each."""
    switch = SwitchProcess(tmp_path / "data", extra_args=(
        "--events", nats_server.urls, *FAST_RETRY, "--events-ack-timeout-s", "1")).start()
    server = nats_server.servers[0]
    accepted = []
    try:
        with WireClient(switch.host, switch.port) as admin:
            admin.hello("admin", switch.admin_token)
            create_world(admin)
            wait_for_events_published(admin)
            published = admin.call("stats")["events"]["published"]
            suspend(server.process)
            try:
                for n in range(50):
                    accepted.append(f"t-{n}")
                    admin.call("transfer", {"id": f"t-{n}", "debit_account": "a-1",
                                            "credit_account": "b-1", "amount": 1})
                wait_until(lambda: switch.log_events("events_publish_failed"),
                           "the ack timeout noticed")
                assert admin.call("stats")["events"]["published"] == published
            finally:
                server.process.send_signal(signal.SIGCONT)
        assert_every_transfer_once(switch, nats_server.urls, set(accepted), set(accepted))
    finally:
        switch.stop()
    [failure] = switch.log_events("events_publish_failed")
    assert "not acknowledged within 1 s" in failure["reason"]
