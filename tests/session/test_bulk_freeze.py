"""A state change that leaves many new objects (a batch) has them frozen out of the cyclic
garbage collector at once (Service.execute_mutation, BULK_OBJECTS), so its young generations
never walk them; a small one leaves its objects to the usual collections."""
import gc

from payswitch.switch.service import BULK_OBJECTS
from support.in_process import exchange, new_session

from session.test_session import frame, open_accounts, replies

BATCH = 8190


def transfer(transfer_id: str) -> dict:
    return {"id": transfer_id, "debit_account": "a-1", "credit_account": "a-2", "amount": 1}


async def test_a_large_batch_is_frozen_at_once_and_a_single_transfer_is_not(event_loop_service):
    service = event_loop_service(durability="none")
    session = new_session(service)
    await open_accounts(service, session)
    try:
        frozen_before = gc.get_freeze_count()
        [reply] = replies(await exchange(service, session, frame(1, "create_transfers", {
            "transfers": [transfer(f"b{n}") for n in range(BATCH)]})))
        assert reply["ok"] and {r["status"] for r in reply["result"]["results"]} == {"created"}
        assert 2 * BATCH > BULK_OBJECTS  # a record and a result a transfer, at least
        assert gc.get_freeze_count() >= frozen_before + BATCH  # each transfer record at least
        assert gc.isenabled()  # on again after the batch

        frozen_after_batch = gc.get_freeze_count()
        [reply] = replies(await exchange(service, session, frame(2, "transfer", transfer("one"))))
        assert reply["ok"]
        assert gc.get_freeze_count() <= frozen_after_batch  # (frozen objects may die)
        assert gc.isenabled()
    finally:
        gc.unfreeze()  # the rest of the test run collects as before
