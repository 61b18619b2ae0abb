"""Builds a snapshot in a process of its own, never by forking the switch:

    python -m switch.snapshot_builder WAL_DIR SNAPSHOT_DIR SEQ LOG_FORMAT PARENT_PID NICE

A fork of the serving process copies its page tables while the event loop waits (15-25 ms for
a few GB) and then makes it pay copy-on-write faults for as long as the child lives (tens of ms
at p99 in open loop). This process instead does what a restart does, read-only: the newest
snapshot plus the log up to SEQ (records the switch has made durable), checks the invariants,
and writes the snapshot under its temporary name for the switch to publish. It runs mildly
niced (`NICE` is added to the niceness), not at idle priority: on a machine whose cores stay busy
an idle-priority builder never finished and the log grew without bound. It dies with the switch.
"""
import logging
import os
import sys
from pathlib import Path

from payswitch.switch.child_process import die_with_parent
from payswitch.switch.logs import configure_logging
from payswitch.switch.storage.recovery import recover_up_to
from payswitch.switch.storage.snapshots import temporary_snapshot_path, write_snapshot_file


def main(argv: list[str]) -> int:
    wal_dir, snapshot_dir_text, seq_text, log_format, parent_pid, nice = argv
    die_with_parent(int(parent_pid))
    os.nice(int(nice))
    # Its replay would log recovery lines into the switch's log as if the switch restarted:
    # only warnings (a damaged snapshot skipped, say) are worth an operator's eye.
    configure_logging(log_format, level=logging.WARNING)
    seq, snapshot_dir = int(seq_text), Path(snapshot_dir_text)
    state = recover_up_to(Path(wal_dir), snapshot_dir, seq)
    write_snapshot_file(temporary_snapshot_path(snapshot_dir, seq), seq, state.snapshot_state())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
