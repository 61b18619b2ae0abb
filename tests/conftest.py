import pytest

from support.switch_process import SwitchProcess
from support.wire import WireClient


@pytest.fixture
def switch(tmp_path):
    """A running switch process on a fresh data directory; stopped with SIGTERM afterwards."""
    process = SwitchProcess(tmp_path / "data").start()
    yield process
    process.stop()


@pytest.fixture
def admin(switch):
    """A raw wire client logged in as the operator."""
    with WireClient(switch.host, switch.port) as client:
        client.hello("admin", switch.admin_token)
        yield client
