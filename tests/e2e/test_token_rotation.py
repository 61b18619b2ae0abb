"""Token rotation over real TCP against a real switch process: participant and operator tokens,
who may rotate, what happens to open sessions, and what a restart keeps."""
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from support.switch_process import SwitchProcess
from support.wire import WireClient
from support.world import create_world

REPO = Path(__file__).resolve().parents[2]


def hello_code(switch: SwitchProcess, participant: str, token: str) -> str:
    """`ok` or the error code of a hello on a fresh connection."""
    with WireClient(switch.host, switch.port) as client:
        reply = client.request("hello", {"participant": participant, "token": token})
    return "ok" if reply["ok"] else reply["error"]["code"]


def rotate(client: WireClient, participant: str) -> dict:
    return client.request("rotate_token", {"participant": participant})


def run_cli(switch: SwitchProcess, *argv: str, env: dict | None = None):
    return subprocess.run(
        [sys.executable, "-m", "client", "--data-dir", str(switch.data_dir), "--port",
         str(switch.port), *argv], capture_output=True, text=True, timeout=60, cwd=REPO,
        env={**os.environ, **(env or {})})


def test_participant_rotation_retires_the_old_token_ends_its_sessions_and_survives_restart(
        switch, admin):
    old = create_world(admin)
    with WireClient(switch.host, switch.port) as old_session, \
            WireClient(switch.host, switch.port) as other_session:
        old_session.hello("bank-a", old["bank-a"])
        other_session.hello("bank-b", old["bank-b"])
        reply = rotate(admin, "bank-a")
        assert reply["ok"], reply
        assert reply["result"]["participant"] == "bank-a"
        new_token = reply["result"]["token"]
        assert new_token != old["bank-a"]
        # the session opened with the old token has ended; the connection stays usable
        ended = old_session.request("lookup_accounts", {"ids": ["a-1"]})
        assert ended["error"]["code"] == "unauthenticated", ended
        assert old_session.request("hello", {"participant": "bank-a", "token": old["bank-a"]})[
            "error"]["code"] == "unauthenticated"
        old_session.hello("bank-a", new_token)
        assert old_session.call("lookup_accounts", {"ids": ["a-1"]})["accounts"][0]["id"] == "a-1"
        # another participant's session is untouched
        assert other_session.call("lookup_accounts", {"ids": ["b-1"]})["accounts"][0]["id"] == \
            "b-1"
    assert hello_code(switch, "bank-a", old["bank-a"]) == "unauthenticated"
    assert hello_code(switch, "bank-a", new_token) == "ok"
    assert hello_code(switch, "bank-b", old["bank-b"]) == "ok"

    [line] = switch.log_events("token_rotated")
    assert (line["participant"], line["sessions_ended"]) == ("bank-a", 1)
    assert new_token not in switch.log() and old["bank-a"] not in switch.log()

    switch.stop()
    for path in switch.data_dir.rglob("*"):  # only the hash reaches the disk
        if path.is_file():
            assert new_token.encode() not in path.read_bytes(), path
    switch.start()
    assert hello_code(switch, "bank-a", old["bank-a"]) == "unauthenticated"
    assert hello_code(switch, "bank-a", new_token) == "ok"


def test_rotation_survives_a_crash_replayed_from_the_log(switch, admin):
    old = create_world(admin)
    new_token = rotate(admin, "bank-b")["result"]["token"]
    switch.kill()  # no shutdown snapshot: the rotation comes back from the WAL alone
    switch.start()
    assert hello_code(switch, "bank-b", old["bank-b"]) == "unauthenticated"
    assert hello_code(switch, "bank-b", new_token) == "ok"


def test_only_the_operator_rotates_and_unknown_participants_are_named(switch, admin):
    tokens = create_world(admin)
    with WireClient(switch.host, switch.port) as bank_a:
        bank_a.hello("bank-a", tokens["bank-a"])
        for participant in ("bank-a", "bank-b", "admin"):
            reply = rotate(bank_a, participant)
            assert reply["error"]["code"] == "forbidden", reply
    reply = rotate(admin, "bank-zz")
    assert reply["error"]["code"] == "participant_not_found", reply
    assert "bank-zz" in reply["error"]["message"]
    reply = admin.request("rotate_token", {"participant": "bank-a", "token": "mine"})
    assert reply["error"]["code"] == "bad_request" and "token" in reply["error"]["message"]
    reply = admin.request("rotate_token", {})
    assert reply["error"]["code"] == "bad_request" and "participant" in reply["error"]["message"]
    # nothing changed: every original token still works
    for participant, token in tokens.items():
        assert hello_code(switch, participant, token) == "ok"
    assert hello_code(switch, "admin", switch.admin_token) == "ok"
    assert switch.log_events("token_rotated") == []


def test_admin_rotation_rewrites_the_token_file_and_retires_the_old_token_at_once(switch):
    old_token = switch.admin_token
    with WireClient(switch.host, switch.port) as caller, \
            WireClient(switch.host, switch.port) as other_admin:
        caller.hello("admin", old_token)
        other_admin.hello("admin", old_token)
        reply = rotate(caller, "admin")
        assert reply["ok"], reply
        new_token = reply["result"]["token"]
        path = switch.data_dir / "admin.token"
        assert path.read_text() == new_token + "\n"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert [p.name for p in switch.data_dir.glob("*.tmp")] == []
        # every operator session, the caller's own included, needs the new token now
        for client in (caller, other_admin):
            assert client.request("stats")["error"]["code"] == "unauthenticated"
        caller.hello("admin", new_token)
        assert caller.call("stats")["ledger"]["participants"] == 0
    assert hello_code(switch, "admin", old_token) == "unauthenticated"
    [line] = switch.log_events("token_rotated")
    assert (line["participant"], line["sessions_ended"]) == ("admin", 2)
    assert new_token not in switch.log()
    switch.restart()
    assert switch.admin_token == new_token
    assert hello_code(switch, "admin", old_token) == "unauthenticated"
    assert hello_code(switch, "admin", new_token) == "ok"


def test_admin_rotation_that_cannot_write_the_file_changes_nothing(switch):
    old_token = switch.admin_token
    blocker = switch.data_dir / ".admin.token.tmp"
    blocker.mkdir()  # the temporary file cannot be opened: the write fails before the rename
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", old_token)
        reply = rotate(admin, "admin")
        assert reply["error"]["code"] == "internal", reply
        assert "not rotated" in reply["error"]["message"]
        assert "admin.token" in reply["error"]["message"]
        assert admin.call("stats")["connections"] >= 1  # the session goes on
    assert (switch.data_dir / "admin.token").read_text() == old_token + "\n"
    assert hello_code(switch, "admin", old_token) == "ok"
    assert switch.log_events("token_rotated") == []


@pytest.fixture
def env_switch(tmp_path):
    process = SwitchProcess(tmp_path / "data", env={"SWITCH_ADMIN_TOKEN": "operator-secret-1"})
    process.start()
    yield process
    process.stop()


def test_admin_rotation_is_refused_when_the_environment_holds_the_token(env_switch):
    with WireClient(env_switch.host, env_switch.port) as admin:
        admin.hello("admin", "operator-secret-1")
        reply = rotate(admin, "admin")
        assert reply["error"]["code"] == "forbidden", reply
        assert "SWITCH_ADMIN_TOKEN" in reply["error"]["message"]
        assert admin.call("stats")["connections"] >= 1  # the session goes on
    assert hello_code(env_switch, "admin", "operator-secret-1") == "ok"
    assert not (env_switch.data_dir / "admin.token").exists()


def test_cli_rotate_token(switch, admin):
    old = create_world(admin)
    done = run_cli(switch, "rotate-token", "bank-a")
    assert done.returncode == 0, done.stderr
    [token] = [line.split()[-1] for line in done.stdout.splitlines()
               if line.startswith("token")]
    assert hello_code(switch, "bank-a", token) == "ok"
    assert hello_code(switch, "bank-a", old["bank-a"]) == "unauthenticated"

    done = run_cli(switch, "--json", "rotate-token", "admin")
    assert done.returncode == 0, done.stderr
    assert '"participant": "admin"' in done.stdout
    assert (switch.data_dir / "admin.token").read_text().strip() in done.stdout
    # the CLI reads the rotated file, so the operator carries on without doing anything
    done = run_cli(switch, "stats")
    assert done.returncode == 0, done.stderr

    done = run_cli(switch, "rotate-token", "bank-zz")
    assert done.returncode == 1
    assert "participant_not_found" in done.stderr and "bank-zz" in done.stderr
    done = run_cli(switch, "--participant", "bank-a", "--token", token, "rotate-token", "bank-b")
    assert done.returncode == 1 and "forbidden" in done.stderr
