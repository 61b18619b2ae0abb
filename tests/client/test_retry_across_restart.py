"""The SDK rides out a switch that is killed (SIGKILL) and restarted seconds later on the same data
directory and port: senders keep going, see no error, and every transfer they were told succeeded
is in the ledger exactly once."""

import asyncio
import time

from support.ports import free_port
from support.restart_load import transfer_across
from support.switch_process import SwitchProcess

from payswitch.client import AsyncClient

SENDERS = 4
DOWN_S = 3.0  # how long the switch stays dead before the restart begins
# Generous so that a slow restart on a busy machine is still ridden out; the SDK's default is 10 s.
RETRY_DEADLINE_S = 60.0


async def test_transfers_ride_out_a_kill_and_restart(tmp_path):
    port = free_port()
    switch = SwitchProcess(tmp_path / "data", extra_args=("--port", str(port))).start()
    try:
        async with await AsyncClient.connect(switch.host, port, token=switch.admin_token,
                                             retry_deadline_s=RETRY_DEADLINE_S) as client:
            assert (await client.create_participants([{"id": "bank-a", "name": "A"}]))[0].ok
            assert all(r.ok for r in await client.create_accounts([
                {"id": "src", "participant": "bank-a", "currency": "USD",
                 "overdraft_limit": None},
                {"id": "dst", "participant": "bank-a", "currency": "USD"}]))

            async def crash_and_restart() -> None:
                switch.kill()
                await asyncio.sleep(DOWN_S)
                await asyncio.to_thread(switch.start)

            killed_at, succeeded = await transfer_across(client, "src", "dst",
                                                         crash_and_restart, SENDERS)
            assert switch.port == port
            assert 300 <= killed_at < len(succeeded)

            # Exactly once: each reported transfer is there, the account's history holds each
            # id once and nothing else, and its balance is their sum.
            found = await client.lookup_transfers(list(succeeded)[:8000])
            assert {t.id: t.amount for t in found} == dict(list(succeeded.items())[:8000])
            history = [t.id async for t in client.iter_account_transfers("dst")]
            assert sorted(history) == sorted(succeeded)
            [dst] = await client.lookup_accounts(["dst"])
            assert dst.balance == sum(succeeded.values())
    finally:
        switch.stop()


def test_a_dead_switch_is_retried_with_backoff_until_the_deadline(tmp_path):
    """Nothing listens after the first attempt: a read keeps reconnecting (with growing waits)
    until the deadline and then reports the connection failure."""
    async def run() -> float:
        switch = SwitchProcess(tmp_path / "data").start()
        try:
            client = await AsyncClient.connect(switch.host, switch.port,
                                               token=switch.admin_token, retry_deadline_s=1.0,
                                               backoff_s=0.05, max_backoff_s=0.2)
        finally:
            switch.stop()
        started = time.monotonic()
        try:
            await client.stats()
        except ConnectionError:
            return time.monotonic() - started
        finally:
            await client.close()
        raise AssertionError("stats answered by a stopped switch")
    assert asyncio.run(run()) >= 0.5  # it kept trying for (about) the deadline
