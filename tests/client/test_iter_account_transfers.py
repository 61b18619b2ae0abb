"""`iter_account_transfers` (async, pool and blocking) against a real switch: every transfer of an
account once, oldest first, across pages; the blocking iterator may be abandoned midway."""

import asyncio

from payswitch.client import AsyncClient, AsyncPool, Client

TRANSFERS = 2_345
PAGE = 1_000  # three pages, the last one partial


async def create_history(client: AsyncClient) -> list[str]:
    assert (await client.create_participants([{"id": "bank-a", "name": "Bank A"}]))[0].ok
    assert all(r.ok for r in await client.create_accounts([
        {"id": "src", "participant": "bank-a", "currency": "USD", "overdraft_limit": None},
        {"id": "dst", "participant": "bank-a", "currency": "USD"}]))
    ids = [f"t{i:05d}" for i in range(TRANSFERS)]
    for start in range(0, TRANSFERS, 1000):
        results = await client.create_transfers(
            [{"id": i, "debit_account": "src", "credit_account": "dst", "amount": 1}
             for i in ids[start:start + 1000]])
        assert all(r.ok for r in results)
    return ids


async def test_async_and_pool_iterators_see_every_transfer_once(switch):
    async with await AsyncClient.connect(switch.host, switch.port,
                                         token=switch.admin_token) as client:
        ids = await create_history(client)
        seen = [t.id async for t in client.iter_account_transfers("dst", page_size=PAGE)]
        assert seen == ids
        assert [t.id async for t in client.iter_account_transfers("src", page_size=7)] == ids
        page = await client.get_account_transfers("dst", limit=PAGE)
        assert page.next_cursor == str(page.next)  # the cursor is also accepted as a string
        rest = await client.get_account_transfers("dst", after=page.next_cursor, limit=PAGE)
        assert [t.id for t in page.transfers + rest.transfers] == ids[:2 * PAGE]
    async with AsyncPool(2, host=switch.host, port=switch.port,
                         token=switch.admin_token) as pool:
        assert [t.id async for t in pool.iter_account_transfers("dst", page_size=PAGE)] == ids


def test_blocking_iterator_pages_and_can_stop_early(switch):
    async def set_up() -> list[str]:
        async with await AsyncClient.connect(switch.host, switch.port,
                                             token=switch.admin_token) as client:
            return await create_history(client)
    ids = asyncio.run(set_up())
    with Client(switch.host, switch.port, token=switch.admin_token) as client:
        assert [t.id for t in client.iter_account_transfers("dst", page_size=PAGE)] == ids
        transfers = client.iter_account_transfers("dst", page_size=10)
        first = [next(transfers).id for _ in range(15)]
        transfers.close()  # abandoned in its second page
        assert first == ids[:15]
        assert client.lookup_accounts(["dst"])[0].balance == TRANSFERS  # still usable


async def test_iterating_an_empty_account_yields_nothing(switch):
    async with await AsyncClient.connect(switch.host, switch.port,
                                         token=switch.admin_token) as client:
        await client.create_participants([{"id": "bank-b", "name": "Bank B"}])
        await client.create_accounts([{"id": "empty", "participant": "bank-b",
                                       "currency": "USD"}])
        assert [t async for t in client.iter_account_transfers("empty")] == []
