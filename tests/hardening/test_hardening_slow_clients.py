"""Slow and idle clients against a real switch process: slowloris (a frame trickled a byte at a
time), clients that never read their replies, idle connections, too many connections, and a
thousand such connections at once while a well-behaved client keeps its latency."""
import random
import resource
import socket
import threading
import time

import pytest

from payswitch.protocol import decode_body, encode_body, encode_frame
from support.switch_process import SwitchProcess
from support.wire import WireClient, frame_header
from support.world import create_world

from hardening.net_support import (QUIET_FLOOR_MS, assert_within_2x, measure_latency,
                                   raise_fd_limit, rss_bytes)

PING = encode_frame(b'{"id":"p","op":"ping","args":{}}')


def start(tmp_path, *args) -> SwitchProcess:
    return SwitchProcess(tmp_path / "data", extra_args=tuple(args)).start()


def admin_client(switch) -> WireClient:
    client = WireClient(switch.host, switch.port)
    client.hello("admin", switch.admin_token)
    return client


def wait_closed(sock: socket.socket, timeout_s: float) -> tuple[bytes, float]:
    """Reads until the server closes; returns (everything read, seconds it took)."""
    started = time.monotonic()
    sock.settimeout(timeout_s)
    data = bytearray()
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass
    return bytes(data), time.monotonic() - started


# --- slowloris ---------------------------------------------------------------------------

def test_a_frame_trickled_a_byte_at_a_time_is_cut_off_at_frame_timeout(tmp_path, stopper):
    switch = start(tmp_path, "--frame-timeout-s", "1")
    stopper(switch)
    with admin_client(switch) as admin, \
            socket.create_connection((switch.host, switch.port)) as slow, \
            socket.create_connection((switch.host, switch.port)) as quiet:
        # 30-byte frame, a byte every 0.25 s: it would take 8.5 s; each byte is "activity",
        # so only the frame timeout can end it
        frame = PING
        slow.sendall(frame[:1])
        started = time.monotonic()
        sent, closed_after = 1, None
        slow.settimeout(0.25)
        while time.monotonic() - started < 6:
            try:
                data = slow.recv(65536)
            except socket.timeout:
                slow.sendall(frame[sent:sent + 1])
                sent += 1
                continue
            closed_after = time.monotonic() - started
            break
        assert closed_after is not None, "the slowloris connection was never closed"
        assert 1.0 <= closed_after <= 3.5, closed_after
        rest, _ = wait_closed(slow, 5)
        reply, codec = decode_body((data + rest)[4:])
        assert codec == "json" and reply["id"] is None
        assert reply["error"]["code"] == "bad_frame"
        assert "frame_timeout_s" in reply["error"]["message"]
        # a connection without a started frame is not touched by the frame timeout
        quiet.settimeout(0.2)
        with pytest.raises(socket.timeout):
            quiet.recv(1)
        quiet.sendall(PING)
        quiet.settimeout(5)
        assert decode_body(quiet.recv(100)[4:])[0]["ok"] is True
        stats = admin.call("stats")
        assert stats["connections_closed"]["frame_timeout"] == 1
    assert switch.log_events("connections_dropped")[0]["frame_timeout"] == 1


def test_a_slow_frame_completed_within_the_timeout_is_served(tmp_path, stopper):
    switch = start(tmp_path, "--frame-timeout-s", "1")
    stopper(switch)
    with socket.create_connection((switch.host, switch.port)) as client:
        # two frames, each sent a byte per 20 ms (0.7 s per frame): 1.4 s in all, none late
        for _ in range(2):
            for index in range(len(PING)):
                client.sendall(PING[index:index + 1])
                time.sleep(0.02)
            client.settimeout(5)
            reply = client.recv(100)
            assert decode_body(reply[4:])[0] == {"id": "p", "ok": True, "result": {}}


# --- clients that do not read ------------------------------------------------------------

def test_a_client_that_never_reads_is_paused_then_dropped(tmp_path, stopper):
    switch = start(tmp_path, "--max-write-buffer-bytes", "65536", "--write-stall-timeout-s", "1")
    stopper(switch)
    with admin_client(switch) as admin:
        create_world(admin)
        handled_before = admin.call("stats")["requests_total"]
    request = encode_frame(encode_body({"id": 1, "op": "lookup_accounts", "args": {
        "ids": ["a-1", "a-2", "b-1", "b-eur", "a-funding"] * 1600}}, "msgpack"))  # ~2 MB reply
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((switch.host, switch.port))
    try:
        sock.sendall(encode_frame(encode_body({"id": 0, "op": "hello", "args": {
            "participant": "admin", "token": switch.admin_token}}, "msgpack")))
        sock.setblocking(False)
        sent, last_progress, reset = 0, time.monotonic(), False
        started = time.monotonic()
        pending = b""
        while time.monotonic() - started < 20:
            try:
                pending = pending or request
                count = sock.send(pending)
                sent += count
                pending = pending[count:]
                last_progress = time.monotonic()
            except BlockingIOError:
                time.sleep(0.01)
            except (ConnectionResetError, BrokenPipeError):
                reset = True
                break
        stalled_for = time.monotonic() - last_progress
        # the switch stopped reading (the sends stopped being taken) long before it dropped us
        assert reset, f"still connected after 20 s ({sent} bytes sent)"
        assert 0.9 <= stalled_for <= 6, stalled_for
    finally:
        sock.close()
    with admin_client(switch) as admin:
        stats = admin.call("stats")
        # of the many requests that reached the kernel, the switch handled only a few: no more
        # replies are made while the write buffer is full
        handled = stats["requests_total"] - handled_before - 2  # hello, and this stats
        assert sent // len(request) >= 50 and handled <= 5, (sent // len(request), handled)
        assert stats["connections_closed"]["write_stall"] == 1, stats
        assert stats["connections"] == 1
    assert switch.log_events("connections_dropped")[0]["write_stall"] == 1


# --- idle connections and the connection limit -------------------------------------------

def test_idle_connections_are_closed_active_ones_kept(tmp_path, stopper):
    switch = start(tmp_path, "--idle-timeout-s", "1")
    stopper(switch)
    with socket.create_connection((switch.host, switch.port)) as idle, \
            WireClient(switch.host, switch.port) as active:
        started = time.monotonic()
        closed_after = None
        idle.setblocking(False)
        while time.monotonic() - started < 4:
            assert active.call("ping") == {}
            try:
                if idle.recv(1) == b"":
                    closed_after = closed_after or time.monotonic() - started
            except BlockingIOError:
                pass
            time.sleep(0.3)
        assert closed_after is not None and 1.0 <= closed_after <= 3.0, closed_after
        assert active.call("ping") == {}  # activity kept it open for 4 s
        active.hello("admin", switch.admin_token)
        assert active.call("stats")["connections_closed"]["idle"] == 1


def test_past_max_connections_a_clear_refusal(tmp_path, stopper):
    switch = start(tmp_path, "--max-connections", "5")
    stopper(switch)
    admin = admin_client(switch)
    others = [WireClient(switch.host, switch.port) for _ in range(4)]
    try:
        for client in others:
            assert client.call("ping") == {}
        with WireClient(switch.host, switch.port) as refused:
            reply, codec = decode_body(refused.recv_body())
            assert codec == "json" and reply["id"] is None and reply["ok"] is False
            assert reply["error"]["code"] == "overloaded"
            assert "too many connections" in reply["error"]["message"]
            assert refused.is_closed_by_server()
        assert all(client.call("ping") == {} for client in others)
        others.pop().close()
        deadline = time.monotonic() + 5
        while admin.call("stats")["connections"] > 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        with WireClient(switch.host, switch.port) as admitted:  # a slot is free again
            assert admitted.call("ping") == {}
        assert admin.call("stats")["shed"]["connections_refused"] == 1
    finally:
        admin.close()
        for client in others:
            client.close()
    deadline = time.monotonic() + 3
    while not switch.log_events("load_shed") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert switch.log_events("load_shed")[0]["connections_refused"] == 1


# --- a thousand of them at once ----------------------------------------------------------

ATTACKERS = {"slowloris": 500, "idle": 350, "non_reading": 350}  # 1,200


class Attack:
    """1,200 hostile connections: slowloris ones each get one more byte of a never-finished
    frame about every second, idle ones do nothing, non-reading ones pipeline requests and never
    read a reply."""

    def __init__(self, host: str, port: int):
        self.sockets: dict[str, list[socket.socket]] = {kind: [] for kind in ATTACKERS}
        self.stop = threading.Event()
        for kind, count in ATTACKERS.items():
            for _ in range(count):
                sock = socket.create_connection((host, port))
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                self.sockets[kind].append(sock)
        for sock in self.sockets["slowloris"]:
            sock.sendall(frame_header(1000) + b"{")
        flood = PING * 300 + encode_frame(b'{"id":1,"op":"lookup_accounts","args":{"ids":[]}}') \
            * 300
        for sock in self.sockets["non_reading"]:
            sock.setblocking(False)
            try:
                sock.send(flood)
            except BlockingIOError:
                pass
        self.trickler = threading.Thread(target=self._trickle, daemon=True)
        self.trickler.start()

    def _trickle(self):
        slow = self.sockets["slowloris"]
        rng = random.Random(1)
        while not self.stop.is_set():
            for sock in slow:
                sock.send(b"x")
                if self.stop.wait(1.0 / len(slow)):
                    return
            rng.shuffle(slow)

    def close(self):
        self.stop.set()
        self.trickler.join()
        for socks in self.sockets.values():
            for sock in socks:
                sock.close()


def test_a_thousand_slow_idle_and_deaf_connections_do_not_slow_a_good_client(tmp_path, stopper):
    hard = raise_fd_limit()
    # The switch inherits a soft limit of 1,024 open files (a common default): it must lift it
    # to the hard limit itself. Limits long enough that all 1,000 stay while we measure.
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        switch = start(tmp_path, "--frame-timeout-s", "120", "--write-stall-timeout-s", "120")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    stopper(switch)
    assert switch.log_events("listening")[0]["fd_limit"] == hard
    with admin_client(switch) as admin:
        create_world(admin)
        baseline = measure_latency(switch.host, switch.port, switch.admin_token)
        rss_before = rss_bytes(switch.process.pid)
        attack = Attack(switch.host, switch.port)
        try:
            deadline = time.monotonic() + 10
            while admin.call("stats")["connections"] <= sum(ATTACKERS.values()) and \
                    time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(1.0)  # let the first trickled bytes and the floods land
            under_attack = measure_latency(switch.host, switch.port, switch.admin_token)
            stats = admin.call("stats")
            rss_after = rss_bytes(switch.process.pid)
        finally:
            attack.close()
    figures = {"connections_held": stats["connections"] - 1, "latency_baseline": baseline,
               "latency_under_attack": under_attack,
               "rss_mb": (round(rss_before / 2**20, 1), round(rss_after / 2**20, 1))}
    print("\n1,200 connections:", figures)
    assert stats["connections"] == 1 + sum(ATTACKERS.values()), stats  # all held at once
    assert sum(stats["connections_closed"].values()) == 0, stats
    assert_within_2x(baseline, under_attack, QUIET_FLOOR_MS)
    assert rss_after - rss_before < 100 << 20, figures
