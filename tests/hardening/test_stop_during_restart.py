"""A stop signal that comes during a restart's own shutdown (a standby that cannot follow, a
deposed primary: switch/cli.py starts the process afresh once run() returns) ends the process
rather than restarting it. The signal then finds `stopping` already set, so it must be
remembered: a failover test's standby, told to stop in that window, once ran on after the
restart until it was killed."""
from payswitch.switch.config import Config
from payswitch.switch.server import SwitchServer


def test_a_stop_signal_during_a_restart_ends_the_process(tmp_path):
    server = SwitchServer(Config(data_dir=tmp_path / "data"))
    server._restart("replication failed while following: TimeoutError()")
    assert server.stopping.is_set() and server.restart_wanted
    server._on_stop_signal()  # SIGTERM while the restart's shutdown runs
    assert server.stopping.is_set() and not server.restart_wanted


def test_a_stop_signal_before_a_restart_is_wanted_still_wins(tmp_path):
    server = SwitchServer(Config(data_dir=tmp_path / "data"))
    server._on_stop_signal()
    server._restart("deposed")  # replication gives up during the shutdown the signal began
    assert not server.restart_wanted


def test_a_restart_alone_starts_afresh(tmp_path):
    server = SwitchServer(Config(data_dir=tmp_path / "data"))
    assert not server.restart_wanted
    server._restart("deposed")
    assert server.restart_wanted and server.restart_reason == "deposed"
