"""Readiness: whether this node takes writes now, and if not, why (served as /readyz)."""
from payswitch.switch.storage.recovery import RecoveryProgress

RECOVERING, STARTING, SHUTTING_DOWN, WRITES_STOPPED = (
    "recovering", "starting", "shutting_down", "writes_stopped")


class Readiness:
    """Read by the metrics listener's thread; the server moves it along as it starts."""

    def __init__(self):
        self.recovery = RecoveryProgress()
        self.recovered = False
        self.service = None  # set once the switch listens

    def not_ready(self) -> dict | None:
        """None when the node accepts writes; else {"reason": ..., and details}."""
        if not self.recovered:
            recovery = self.recovery
            return {"reason": RECOVERING, "records_replayed": recovery.records_replayed,
                    "bytes_replayed": recovery.bytes_replayed,
                    "bytes_total": recovery.bytes_total}
        service = self.service
        if service is None:
            return {"reason": STARTING}
        if service.shutting_down:
            return {"reason": SHUTTING_DOWN}
        failure = service.wal.failure
        if failure is not None:
            return {"reason": f"{WRITES_STOPPED}: {failure}"}
        if not service.writable():  # a standby: clients belong at the primary
            return {"reason": service.role, "primary": service.replication.primary_address()}
        return None
