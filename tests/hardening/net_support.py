"""Helpers for the network hardening tests: latency probe, RSS, file limits, TLS material."""
import json
import multiprocessing
import os
import resource
import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from support.processes import track
from support.switch_process import SwitchProcess
from support.wire import WireClient
from support.world import create_world


PROBE = Path(__file__).with_name("latency_probe.py")
ROOT = Path(__file__).resolve().parents[2]


def start_with_world(tmp_path, stopper, *args) -> tuple[SwitchProcess, WireClient]:
    """A switch (stopped at the test's end) with the standard world, and an operator client."""
    switch = SwitchProcess(tmp_path / "data", extra_args=tuple(args)).start()
    stopper(switch)
    admin = WireClient(switch.host, switch.port)
    admin.hello("admin", switch.admin_token)
    create_world(admin)
    return switch, admin


def raise_fd_limit() -> int:
    """Lifts this process's soft RLIMIT_NOFILE to the hard limit (1,000+ sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class LatencyProbe:
    """The well-behaved client, in its own process; see latency_probe.py."""

    def __init__(self, host: str, port: int, token: str, count: int = 0,
                 interval_s: float = 0.002):
        self.process = track(subprocess.Popen(
            [sys.executable, str(PROBE), host, str(port), token, "--count", str(count),
             "--interval-s", str(interval_s)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}))
        ready = self.process.stdout.readline()
        if not ready:
            raise RuntimeError(f"latency probe failed: {self.process.stderr.read()}")

    def result(self, timeout_s: float = 120.0) -> dict:
        """Stops the probe (if it runs until told) and returns its latency summary."""
        out, err = self.process.communicate(input="", timeout=timeout_s)
        if self.process.returncode != 0:
            raise RuntimeError(f"latency probe failed: {err}")
        return json.loads(out.strip().splitlines()[-1])


def measure_latency(host: str, port: int, token: str, count: int = 600) -> dict:
    return LatencyProbe(host, port, token, count=count).result()


# Absolute floors added to "2x the baseline". A good client's round trip on loopback is ~0.2 ms,
# so 2x alone would measure the test box, not the switch: on a 2-core machine shared with other
# work, the OS deschedules the switch for milliseconds now and then. QUIET: attacks that cost the
# switch little CPU (idle, slow, deaf connections, failed hellos). SHARED_CPU: attacks that keep
# the switch's CPU saturated (the fuzz, a flood of tiny frames), where a request also waits for
# about one turn (0.1-0.25 ms; new frames first) and for what the OS takes when four busy
# processes share two cores; expensive frames are decoded off the event loop, long replies
# encoded in steps, and a read is split into frames 512 at a time. Measured under the fuzz: p99
# 1.4-2.5 ms, against 7-8 ms before those changes; under a flood of tiny frames 1.0-1.2 ms,
# against 10-14 ms (and hundreds to thousands of ms without the turns and limits at all).
QUIET_FLOOR_MS = {"p50_ms": 0.5, "p99_ms": 10.0}
SHARED_CPU_FLOOR_MS = {"p50_ms": 0.5, "p99_ms": 3.0}


def assert_within_2x(baseline: dict, under_attack: dict, floor_ms: dict) -> None:
    """p50 and p99 under attack within 2x of the baseline, plus a small absolute floor (a 2-core
    test box shares its CPUs between the switch, the attacker and the probe)."""
    for key, floor in floor_ms.items():
        limit = 2 * baseline[key] + floor
        assert under_attack[key] <= limit, \
            f"{key} {under_attack[key]} ms under attack > 2 x {baseline[key]} + {floor} ms " \
            f"(baseline {baseline}, under attack {under_attack})"


def run_niced(function, *args, nice: int = 19, timeout_s: float = 3600.0, **kwargs):
    """Runs function(*args, **kwargs) in a forked child at low CPU priority and returns its
    result. The attacker of a real deployment does not run on the switch's CPUs; on a small test
    box it must not take them from the switch and the well-behaved client either. An exception
    in the child (a failed check) is raised here as an AssertionError with its traceback."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)

    def child():
        os.nice(nice)
        try:
            sender.send(("ok", function(*args, **kwargs)))
        except BaseException as error:  # noqa: BLE001 - reported to the parent
            import traceback
            sender.send(("error", f"{type(error).__name__}: {error}\n{traceback.format_exc()}"))

    process = context.Process(target=child, daemon=True)
    process.start()
    sender.close()
    try:
        if not receiver.poll(timeout_s):
            raise AssertionError(f"{function.__name__} did not finish within {timeout_s}s")
        status, value = receiver.recv()
        process.join(10)
    finally:  # also on a timeout or an interrupt: the attacker does not outlive the test
        if process.is_alive():
            process.kill()
            process.join()
    if status != "ok":
        raise AssertionError(f"{function.__name__} failed in the attacker process:\n{value}")
    return value


# --- TLS -----------------------------------------------------------------------------------

def openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {result.stderr}")


def make_pki(directory: Path, client_names=("admin", "bank-a", "bank-b")) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1/localhost and one client certificate per name
    (subject CN = the name), all EC P-256, made with the openssl command-line tool."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command-line tool is not installed; TLS tests need it to "
                    "make certificates")
    directory.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=payswitch test CA", cwd=directory)
    (directory / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    (directory / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    names = [("server", "server.ext", "/CN=payswitch")] + \
            [(name, "client.ext", f"/CN={name}") for name in client_names]
    for name, extensions, subject in names:
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject,
                cwd=directory)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", extensions,
                cwd=directory)
    return {path.name: path for path in directory.iterdir()}


def client_context(pki: dict[str, Path], name: str | None) -> ssl.SSLContext:
    """Trusts the test CA; presents `name`'s certificate unless name is None."""
    context = ssl.create_default_context(cafile=pki["ca.pem"])
    if name is not None:
        context.load_cert_chain(pki[f"{name}.pem"], pki[f"{name}.key"])
    return context


class TlsWireClient(WireClient):
    """WireClient over TLS."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext, timeout_s: float = 20.0):
        raw = socket.create_connection((host, port), timeout=timeout_s)
        self._start(context.wrap_socket(raw, server_hostname=host))
