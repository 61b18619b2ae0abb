"""A WAL of records applied through recovery's own replay path, for the derivation tests."""
import msgpack

from ledger.ledger_support import NOW
from payswitch.switch.events.derive import derive
from payswitch.switch.state import SwitchState
from payswitch.switch.storage.recovery import apply_record


class Log:
    """Records applied one by one as recovery applies them (apply_record): the AppliedRecords
    a node hands to its event stream. The clock advances 1 ms per record unless `now` is given."""

    def __init__(self):
        self.state = SwitchState()
        self.seq = 0
        self.now = NOW
        self.payloads: list[bytes] = []

    def apply(self, op, args, caller="admin", now=None):
        self.now = self.now + 1_000_000 if now is None else now
        self.seq += 1
        payload = msgpack.packb([self.seq, self.now, caller, op, args], use_bin_type=True)
        self.payloads.append(payload)
        return apply_record(self.state, payload, self.seq - 1, f"record {self.seq}")

    def events(self, op, args, caller="admin", now=None) -> list[tuple[str, dict]]:
        return derive(self.apply(op, args, caller, now))


def replayed(payloads: list[bytes]) -> list:
    """The AppliedRecords of a fresh state replaying `payloads`: what a restart derives from."""
    state = SwitchState()
    return [apply_record(state, payload, seq, f"record {seq + 1}")
            for seq, payload in enumerate(payloads)]
