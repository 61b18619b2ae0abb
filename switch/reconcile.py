"""`python -m switch reconcile --data-dir DIR`: prove the ledger and the window reports agree.

Rebuilds the state read-only from the data directory's newest snapshot and WAL (a running
switch may keep appending: the replay stops before an incomplete tail record), checks the ledger's
balances, then recomputes every closed window from its transfers (`switch.ledger.reconcile`) and
prints the differences, or one line saying there are none.

Exit codes: 0 reconciled, 1 differences found, 2 the data directory cannot be read.
"""
import json
import sys
from dataclasses import asdict
from pathlib import Path

from payswitch.switch.ledger import invariants
from payswitch.switch.ledger.reconcile import Difference, Reconciliation, reconcile, render
from payswitch.switch.storage.recovery import RecoveryError, recover


def ledger_of(recovered):
    """The ledger in a recovery result (the whole switch state holds it as `.ledger`)."""
    state = getattr(recovered, "state", None)
    if state is not None:
        return getattr(state, "ledger", state)
    return recovered.ledger


def reconcile_data_dir(data_dir: Path) -> Reconciliation:
    recovered = recover(data_dir / "wal", data_dir / "snapshots", read_only=True)
    ledger = ledger_of(recovered)
    result = reconcile(ledger)
    try:
        invariants.check_balances(ledger)
    except AssertionError as error:
        result.differences.insert(0, Difference(None, "ledger", "balances", str(error), None))
    return result


def run(data_dir: Path, as_json: bool = False, out=sys.stdout, err=sys.stderr) -> int:
    if not (data_dir / "wal").is_dir():
        print(f"reconcile: {data_dir} is not a switch data directory (no wal/)", file=err)
        return 2
    try:
        result = reconcile_data_dir(data_dir)
    except (RecoveryError, OSError) as error:
        print(f"reconcile: cannot read {data_dir}: {error}", file=err)
        return 2
    if as_json:
        print(json.dumps({"windows": result.windows, "transfers": result.transfers,
                          "reconciled": result.ok,
                          "differences": [asdict(d) for d in result.differences]},
                         default=str), file=out)
    else:
        print(render(result), file=out)
    return 0 if result.ok else 1
