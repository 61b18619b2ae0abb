"""SDK senders that keep transferring while a switch is killed and restarted under them."""
import asyncio
import itertools


async def transfer_across(client, debit: str, credit: str, restart, senders: int,
                          before: int = 300, after: int = 200) -> tuple[int, dict[str, int]]:
    """`senders` tasks send transfers debit -> credit through `client` until `after` were
    acknowledged after `restart` (an async callable, awaited once `before` were acknowledged)
    returned; any error fails. Returns (acknowledged when the restart began, id -> amount of
    every transfer acknowledged)."""
    numbers = itertools.count()
    acknowledged: dict[str, int] = {}  # id -> amount, as the SDK reported
    restarted = asyncio.Event()
    after_restart = 0

    async def send() -> None:
        nonlocal after_restart
        while after_restart < after:
            number = next(numbers)
            transfer_id, amount = f"t{number}", 1 + number % 97
            result = await client.transfer(transfer_id, debit, credit, amount)
            assert result.ok, result  # any error fails the test
            acknowledged[transfer_id] = amount
            if restarted.is_set():
                after_restart += 1

    async def restart_when_due() -> int:
        while len(acknowledged) < before:
            await asyncio.sleep(0.01)
        began_at = len(acknowledged)
        await restart()
        restarted.set()
        return began_at

    began_at, *_ = await asyncio.gather(restart_when_due(), *(send() for _ in range(senders)))
    return began_at, acknowledged
