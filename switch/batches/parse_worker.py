"""Parses one batch in a process of its own:

    python -m switch.batches.parse_worker FORMAT INPUT INPUT_FD ITEMS_FD OUTCOME_FD START NICE
                                          PARENT_PID EXTRA_CURRENCIES

The switch serves real-time transfers from one interpreter; a parse thread there held the GIL
for seconds and kept a million item dicts alive. Here the parse runs at a lower CPU priority
(`NICE` is added to the niceness) and dies with the switch (`PARENT_PID`). It talks through
memory files (memfd) that the switch passes it, not files on disk: a few hundred MB written to
the data disk would be flushed by the kernel while the WAL fsyncs, and slow those down.

    INPUT_FD    read: the batch content (INPUT "content" or "summary"), or the msgpack of the
                items of a `submit_batch` (INPUT "items")
    ITEMS_FD    written: the normalized items from index START on (a resumed batch has applied
                the ones before), one msgpack map after another; nothing for "summary" (the
                drop folder only needs the outcome to submit a file)
    OUTCOME_FD  written: msgpack {"problems": [[where, reason], ...], "count", "sum", "meta",
                "digest"} (digest: SHA-256 of the content, hex; None for INPUT "items")

EXTRA_CURRENCIES are the codes accepted besides ISO 4217's, comma-separated, or "*" for any
well-formed code: a batch accepted before a restart is read again as it was accepted, whatever
the switch's setting is now.

Exit status 0 means both were written completely. The switch streams the items in chunks, so it
never holds the whole batch.
"""
import hashlib
import itertools
import os
import sys

import msgpack

from payswitch.protocol.batch_files import parse_batch
from payswitch.switch.child_process import accept_currencies_argument, die_with_parent

WRITE_BUFFER_BYTES = 1 << 20


def parse_into(fmt: str, data: bytes, data_is_items: bool, items_file, start: int) -> dict:
    """Writes the items from `start` on to `items_file` (unless None); returns the outcome."""
    if data_is_items:
        parsed = parse_batch(fmt, None, msgpack.unpackb(data))
    else:
        parsed = parse_batch(fmt, data, None)
    if items_file is not None:
        packer = msgpack.Packer(use_bin_type=True)
        for item in itertools.islice(parsed.items, start, None):
            items_file.write(packer.pack(item))
    return {"problems": [list(p) for p in parsed.errors], **parsed.control, "meta": parsed.meta}


def main(argv: list[str]) -> int:
    fmt, kind, input_fd, items_fd, outcome_fd, start, nice, parent_pid, extra_currencies = argv
    die_with_parent(int(parent_pid))
    accept_currencies_argument(extra_currencies)
    os.nice(int(nice))
    with open(int(input_fd), "rb") as source:
        data = source.read()
    with open(int(items_fd), "wb", buffering=WRITE_BUFFER_BYTES) as items_file:
        outcome = parse_into(fmt, data, kind == "items",
                             None if kind == "summary" else items_file, int(start))
    outcome["digest"] = None if kind == "items" else hashlib.sha256(data).hexdigest()
    with open(int(outcome_fd), "wb") as outcome_file:
        outcome_file.write(msgpack.packb(outcome, use_bin_type=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
