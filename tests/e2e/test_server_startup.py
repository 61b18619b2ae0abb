"""Start-up over real processes: the operator token, the data directory lock, what is printed."""
import stat

from support.switch_process import SwitchProcess, run_switch_once
from support.wire import WireClient


def test_admin_token_is_created_once_with_mode_0600_and_kept_across_restarts(tmp_path):
    switch = SwitchProcess(tmp_path / "data").start()
    token_path = switch.data_dir / "admin.token"
    assert stat.S_IMODE(token_path.stat().st_mode) == 0o600
    first_token = switch.admin_token
    assert len(first_token) >= 32
    switch.restart()
    assert switch.admin_token == first_token
    with WireClient(switch.host, switch.port) as client:
        assert client.hello("admin", first_token)["participant"] == "admin"
        assert client.request("hello", {"participant": "admin", "token": first_token[:-1] + "x"})[
            "error"]["code"] == "unauthenticated"
    switch.stop()


def test_switch_admin_token_from_the_environment_wins_and_no_file_is_written(tmp_path):
    switch = SwitchProcess(tmp_path / "data",
                           env={"SWITCH_ADMIN_TOKEN": "operator-secret-1"}).start()
    try:
        assert not (switch.data_dir / "admin.token").exists()
        with WireClient(switch.host, switch.port) as client:
            assert client.hello("admin", "operator-secret-1")["participant"] == "admin"
        assert "operator-secret-1" not in switch.log(), "a secret reached the log"
    finally:
        switch.stop()


def test_a_second_switch_on_the_same_data_directory_refuses_to_start(tmp_path):
    switch = SwitchProcess(tmp_path / "data").start()
    try:
        code, output = run_switch_once(switch.data_dir)
        assert code == 1 and "in use by another switch process" in output
    finally:
        switch.stop()


def test_start_prints_where_it_listens_and_where_the_token_is(tmp_path):
    switch = SwitchProcess(tmp_path / "data").start()
    switch.stop()
    printed = switch.log()
    assert f"payswitch listening on 127.0.0.1:{switch.port}" in printed
    assert str(switch.data_dir / "admin.token") in printed
