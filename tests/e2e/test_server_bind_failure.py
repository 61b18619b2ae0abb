"""A switch that cannot listen says so in one line, exits non-zero and touches no data directory."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from support.switch_process import SwitchProcess
from support.wire import WireClient

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def occupied_port():
    """A port held by a real listening socket (not a switch)."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        yield holder.getsockname()[1]
    finally:
        holder.close()


def serve_once(data_dir: Path, port: int, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "switch", "serve", "--data-dir", str(data_dir), "--port", str(port),
         "--log-format", "json", *extra],
        capture_output=True, text=True, timeout=60, cwd=REPO,
        env={k: v for k, v in os.environ.items() if k != "SWITCH_ADMIN_TOKEN"})


def tree(directory: Path) -> dict[str, tuple]:
    """Every path under `directory` with its size, modification time and mode."""
    return {str(path.relative_to(directory)): (path.stat().st_size, path.stat().st_mtime_ns,
                                               path.stat().st_mode)
            for path in sorted(directory.rglob("*"))}


def assert_one_line_naming(result: subprocess.CompletedProcess, address: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert address in lines[0] and "address already in use" in lines[0], lines[0]
    assert result.stdout == ""


def test_a_port_in_use_is_one_line_a_non_zero_exit_and_no_data_directory(tmp_path,
                                                                         occupied_port):
    data_dir = tmp_path / "fresh" / "data"
    result = serve_once(data_dir, occupied_port)
    assert_one_line_naming(result, f"127.0.0.1:{occupied_port}")
    assert not data_dir.exists() and not data_dir.parent.exists()


def test_an_existing_data_directory_is_left_exactly_as_it_was(tmp_path, occupied_port):
    switch = SwitchProcess(tmp_path / "data").start()  # a real one, with a log and a token
    with WireClient(switch.host, switch.port) as client:
        client.hello("admin", switch.admin_token)
        client.call("create_participants", {"participants": [{"id": "bank-a", "name": "A"}]})
    switch.stop()
    before = tree(switch.data_dir)
    assert "admin.token" in before and "LOCK" in before
    result = serve_once(switch.data_dir, occupied_port)
    assert_one_line_naming(result, f"127.0.0.1:{occupied_port}")
    assert tree(switch.data_dir) == before


def test_the_port_of_a_running_switch_is_refused_and_that_switch_serves_on(tmp_path):
    running = SwitchProcess(tmp_path / "running").start()
    try:
        result = serve_once(tmp_path / "second", running.port)
        assert_one_line_naming(result, f"127.0.0.1:{running.port}")
        assert not (tmp_path / "second").exists()
        with WireClient(running.host, running.port) as client:
            assert client.hello("admin", running.admin_token)["participant"] == "admin"
    finally:
        running.stop()


def test_an_unresolvable_host_is_one_line_naming_it(tmp_path):
    result = serve_once(tmp_path / "data", 7878, "--host", "no-such-host.invalid")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert "cannot listen on no-such-host.invalid:7878" in result.stderr
    assert not (tmp_path / "data").exists()
