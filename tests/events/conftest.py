import pytest

from support.events_stream import FAST_RETRY
from support.nats_cluster import NatsCluster
from support.switch_process import SwitchProcess


@pytest.fixture
def nats_server(tmp_path):
    """One nats-server with JetStream (fsyncing every write); stopped afterwards."""
    cluster = NatsCluster(tmp_path / "nats", size=1)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture
def events_switch(tmp_path, nats_server):
    """A switch publishing its events to `nats_server`; stopped with SIGTERM afterwards."""
    switch = SwitchProcess(tmp_path / "data",
                           extra_args=("--events", nats_server.urls, *FAST_RETRY)).start()
    try:
        yield switch
    finally:
        switch.stop()
