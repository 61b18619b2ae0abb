import asyncio
import threading
from pathlib import Path

import pytest
import uvloop

# The helpers' asserts must run under `python -O` too (scripts/test runs the suite so): pytest
# rewrites the asserts of test modules and conftest files only, so the helper modules (support/,
# and the *_support modules beside the tests) are named here, before anything imports them.
pytest.register_assert_rewrite("support", *sorted(
    f"{path.parent.name}.{path.stem}" for path in Path(__file__).parent.glob("*/*.py")
    if path.parent.name != "support" and not path.name.startswith(("test_", "conftest"))))

from support import processes  # noqa: E402 (after the registration above)
from support.peer import Peer  # noqa: E402
from support.switch_process import SwitchProcess  # noqa: E402
from support.wire import WireClient  # noqa: E402


@pytest.fixture(autouse=True)
def stop_processes_left_running():
    """Kills what a test started and left running, also when it failed half-way (a switch it
    meant to stop at the end, a probe): nothing outlives its test to load the next ones."""
    before = processes.running()
    yield
    processes.kill_all_except(before)


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


@pytest.fixture
async def peer():
    """A scripted peer (support/peer.py) on the test's event loop."""
    server = Peer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def thread_peer():
    """The same peer on its own event loop thread, for the blocking client and the CLI."""
    loop = uvloop.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = Peer()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result()
    yield server
    asyncio.run_coroutine_threadsafe(server.stop(), loop).result()
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()
