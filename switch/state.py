"""Everything the WAL replays: the ledger and the batch book, behind one `execute`."""
import hashlib

import msgpack

from payswitch.protocol.ops import BATCHES, applied_by
from payswitch.switch.batches.book import BatchBook
from payswitch.switch.ledger import Ledger
from payswitch.switch.ledger.codes import Executed
from payswitch.switch.ledger.transfers import Commits

BATCH_OPS = applied_by(BATCHES)  # the rest is the ledger's (or unknown: it says so)


class SwitchState:
    def __init__(self, ledger: Ledger | None = None):
        self.ledger = ledger if ledger is not None else Ledger()
        self.batches = BatchBook(self.ledger)

    def execute(self, caller: str, op: str, args, now_ns: int) -> Executed:
        """Run one request, as one WAL record replays; a failure is returned in
        Executed.error, never raised."""
        if op in BATCH_OPS:
            return self.batches.execute(caller, op, args, now_ns)
        return self.ledger.execute(caller, op, args, now_ns)

    def next_expiry_ns(self) -> int | None:
        return self.ledger.next_expiry_ns()

    def take_commits(self) -> Commits:
        """What the ledger committed since the last take (see Ledger.take_commits)."""
        return self.ledger.take_commits()

    def participant_token_hash(self, participant: str) -> str | None:
        return self.ledger.participant_token_hash(participant)

    def counts(self) -> dict:
        return {**self.ledger.counts(), "batches": len(self.batches.batches)}

    def check_invariants(self) -> None:
        self.ledger.check_invariants()

    def digest(self) -> str:
        """SHA-256 of the whole state as a snapshot holds it (deterministic: replay builds the
        same maps in the same order on every node)."""
        return hashlib.sha256(msgpack.packb(self.snapshot_state(), use_bin_type=True)).hexdigest()

    def snapshot_state(self) -> dict:
        return {"ledger": self.ledger.snapshot_state(),
                "batches": self.batches.snapshot_state()}

    @classmethod
    def from_snapshot_state(cls, state: dict) -> "SwitchState":
        switch_state = cls(Ledger.from_snapshot_state(state["ledger"]))
        switch_state.batches.restore(state["batches"])
        return switch_state
