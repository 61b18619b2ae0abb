"""Batches as deterministic state, replayed from the WAL like the ledger.

Parsing happens outside (it is slow and pure); what reaches this book, and the log, is its outcome:
`batch_validated` (problems or the item count) and `batch_apply` (a chunk of normalized items,
applied through the ledger as the batch owner). So replay needs no parsing, and a partial batch
resumes after a crash from `applied`, never applying an item twice. An atomic batch is one
`batch_apply` of one linked chain: one record, one ledger step, all or nothing.
"""
import hashlib

import msgpack

from payswitch.protocol import codes
from payswitch.protocol.ops import BATCHES, applied_by
from payswitch.switch.ledger import LedgerError
from payswitch.switch.ledger.codes import ADMIN
from payswitch.switch.ledger.handlers import dispatch_table, handler_table, handles
from payswitch.switch.ledger.codes import Executed

RECEIVED, PROCESSING, COMPLETED, REJECTED = "received", "processing", "completed", "rejected"
ACCEPTED = frozenset({codes.CREATED, codes.EXISTS})


class Batch:
    __slots__ = ("batch_id", "owner", "format", "mode", "control_count", "control_sum", "digest",
                 "state", "content", "items", "total", "applied", "created", "failed", "ids",
                 "statuses", "problems", "submitted_at")

    def __init__(self, batch_id, owner, fmt, mode, control_count, control_sum, digest, content,
                 items, submitted_at):
        self.batch_id, self.owner, self.format, self.mode = batch_id, owner, fmt, mode
        self.control_count, self.control_sum, self.digest = control_count, control_sum, digest
        self.state = RECEIVED
        self.content, self.items = content, items  # dropped once no longer needed
        self.total = self.applied = self.created = self.failed = 0
        self.ids: list[str] = []
        self.statuses: list[str] = []
        self.problems: list[list[str]] = []
        self.submitted_at = submitted_at

    def signature(self):
        return (self.format, self.mode, self.control_count, self.control_sum, self.digest)

    def summary(self) -> dict:
        return {"batch_id": self.batch_id, "format": self.format, "state": self.state,
                "total": self.total,
                "created": self.created, "failed": self.failed, "processed": self.applied,
                "control": {"count": self.control_count, "sum": self.control_sum},
                "problems": [{"where": w, "reason": r} for w, r in self.problems]}


class BatchBook:
    """Batch ids, uploads, progress and per-item results."""

    def __init__(self, ledger, max_upload_bytes: int = 1 << 30):
        self.ledger = ledger
        self.max_upload_bytes = max_upload_bytes
        self.batches: dict[str, Batch] = {}
        self.uploads: dict[str, tuple[str, dict[int, bytes]]] = {}  # id -> (owner, seq -> data)
        self.ops = dispatch_table(self, _HANDLERS)  # op -> (handler, mutating)

    def execute(self, caller, op, args, now_ns) -> Executed:
        """Run one batch request; a failure is returned, never raised (see Executed). A batch
        op fails before it changes anything."""
        handler, mutating = self.ops[op]
        try:
            result, changed = (handler(caller, args, now_ns) if mutating
                               else (handler(caller, args), False))
        except LedgerError as error:
            return Executed(None, False, error)
        return Executed(result, changed, None)

    def unfinished(self) -> list[str]:
        return [b.batch_id for b in self.batches.values() if b.state in (RECEIVED, PROCESSING)]

    # uploads and submission

    @handles("upload_batch_part")
    def _upload_part(self, caller, args, now_ns):
        batch_id, seq, data = args["batch_id"], args["seq"], args["data"]
        if batch_id in self.batches:
            raise LedgerError(codes.EXISTS_WITH_DIFFERENT_FIELDS,
                              f"batch {batch_id} is already submitted, so no more parts can be "
                              f"uploaded under its id; choose another id")
        owner, parts = self.uploads.setdefault(batch_id, (caller, {}))
        if owner != caller:
            raise LedgerError(codes.EXISTS_WITH_DIFFERENT_FIELDS, _taken(batch_id))
        result = {"batch_id": batch_id, "seq": seq, "bytes": len(data)}
        if seq in parts:
            if parts[seq] != data:
                raise LedgerError(codes.EXISTS_WITH_DIFFERENT_FIELDS,
                                  f"part {seq} of batch {batch_id} was uploaded before with other "
                                  f"bytes ({len(parts[seq])} stored, {len(data)} sent)")
            return result, False
        if sum(map(len, parts.values())) + len(data) > self.max_upload_bytes:
            raise LedgerError(codes.BAD_REQUEST, f"a batch may upload at most "
                                                 f"{self.max_upload_bytes} bytes")
        parts[seq] = data
        return result, True

    @handles("submit_batch")
    def _submit(self, caller, args, now_ns):
        batch_id, items = args["batch_id"], args["items"]
        content, batch = args["content"], self.batches.get(batch_id)
        if content is None and items is None and batch_id in self.uploads:
            content = self._uploaded_parts(caller, batch_id)
        # A new upload's digest is left to the parse worker (batch_validated): joining and
        # hashing tens of MB here would stop the event loop for tens of ms.
        deferred = batch is None and type(content) is list
        signature = (args["format"], args["mode"], args["control_count"], args["control_sum"],
                     None if deferred else _digest(content, items))
        if batch is not None:
            # A resubmission without content (its parts were consumed) compares the rest.
            same = batch.signature()[:4] == signature[:4] and \
                signature[4] in (None, self._digest_of(batch))
            if caller not in (batch.owner, ADMIN):
                raise LedgerError(codes.EXISTS_WITH_DIFFERENT_FIELDS, _taken(batch_id))
            if not same:
                raise LedgerError(codes.EXISTS_WITH_DIFFERENT_FIELDS,
                                  _other_submission(batch, signature, self._digest_of(batch)))
            return {"batch_id": batch_id, "state": batch.state}, False
        if content is None and items is None:
            raise LedgerError(codes.BAD_REQUEST, "no content, items or uploaded parts")
        self.uploads.pop(batch_id, None)
        self.batches[batch_id] = Batch(batch_id, caller, *signature, content, items, now_ns)
        return {"batch_id": batch_id, "state": RECEIVED}, True

    def _uploaded_parts(self, caller, batch_id) -> list[bytes]:
        """The uploaded parts in order: the batch's content, kept in parts (see content_bytes)."""
        owner, parts = self.uploads[batch_id]
        if owner != caller:
            raise LedgerError(codes.EXISTS_WITH_DIFFERENT_FIELDS, _taken(batch_id))
        missing = [seq for seq in range(len(parts)) if seq not in parts]
        if missing:
            raise LedgerError(codes.BAD_REQUEST, f"uploaded parts must count from 0 without "
                                                 f"gaps; part {missing[0]} is missing")
        return [parts[seq] for seq in range(len(parts))]

    @staticmethod
    def _digest_of(batch: Batch) -> str | None:
        """The batch's digest; one not yet reported by its parse is computed now (a resubmission
        while the first is parsed, or the replay of a log written before digests were deferred)."""
        if batch.digest is None and batch.content is not None:
            batch.digest = _digest(content_bytes(batch.content), None)
        return batch.digest

    # processing (internal ops, written by the batch engine)

    @handles("batch_validated")
    def _validated(self, caller, args, now_ns):
        batch = self.batches[args["batch_id"]]
        if batch.state != RECEIVED:  # the engine validates a batch once (explicit: python -O)
            raise AssertionError(f"batch {batch.batch_id} validated in state {batch.state}")
        if batch.digest is None:
            batch.digest = args.get("digest")
            self._digest_of(batch)  # the record predates reported digests: compute it
        if args["problems"]:
            batch.state, batch.problems = REJECTED, [list(p) for p in args["problems"]]
            batch.content = batch.items = None
        else:
            batch.state, batch.total = PROCESSING, args["total"]
            self._finish_if_done(batch)
        return _finished(batch), True

    @handles("batch_apply")
    def _apply(self, caller, args, now_ns):
        batch = self.batches[args["batch_id"]]
        items = args["items"]
        if batch.state != PROCESSING or args["start"] != batch.applied:
            raise AssertionError(f"batch {batch.batch_id}: chunk at {args['start']} applied in "
                                 f"state {batch.state} after {batch.applied} items")
        if batch.mode == "atomic":
            if len(items) != batch.total:
                raise AssertionError(f"atomic batch {batch.batch_id}: {len(items)} items "
                                     f"applied of {batch.total}")
            for item in items[:-1]:
                item["linked"] = True
        result = self.ledger.execute(batch.owner, "create_transfers", {"transfers": items},
                                     now_ns).result
        for item, outcome in zip(items, result["results"]):
            batch.ids.append(item["id"])
            batch.statuses.append(outcome["status"])
            if outcome["status"] in ACCEPTED:
                batch.created += 1
            else:
                batch.failed += 1
        batch.applied += len(items)
        self._finish_if_done(batch)
        return _finished(batch), True

    def _finish_if_done(self, batch) -> None:
        if batch.applied == batch.total:
            batch.state = COMPLETED
            batch.items = None
            if batch.format != "pain.001":  # pain.002 reports need the original document
                batch.content = None

    # reads

    def visible(self, caller, batch_id) -> Batch:
        batch = self.batches.get(batch_id)
        if batch is None or caller not in (batch.owner, ADMIN):
            raise LedgerError(codes.BATCH_NOT_FOUND, f"no batch {batch_id!r}")
        return batch

    @handles("get_batch")
    def _get(self, caller, args):
        return self.visible(caller, args["batch_id"]).summary()

    @handles("get_batch_results")
    def _results(self, caller, args):
        batch = self.visible(caller, args["batch_id"])
        start = args["offset"]
        end = min(start + args["limit"], len(batch.statuses))
        results = [{"index": i, "id": batch.ids[i], "status": batch.statuses[i]}
                   for i in range(start, end)]
        return {"results": results, "next": end if end < len(batch.statuses) else None}

    # snapshots

    def snapshot_state(self) -> dict:
        return {"uploads": {k: [owner, parts] for k, (owner, parts) in self.uploads.items()},
                "batches": [[getattr(b, name) for name in Batch.__slots__]
                            for b in self.batches.values()]}

    def restore(self, state: dict) -> None:
        self.uploads = {k: (owner, {int(s): d for s, d in parts.items()})
                        for k, (owner, parts) in state["uploads"].items()}
        for values in state["batches"]:
            batch = Batch.__new__(Batch)
            for name, value in zip(Batch.__slots__, values):
                setattr(batch, name, value)
            self.batches[batch.batch_id] = batch


_HANDLERS = handler_table(BatchBook, applied_by(BATCHES))  # checked once, at import


def _finished(batch: Batch) -> dict:
    """The result of an internal batch step: {"finished": counts} once the batch is done (what
    the committed-event stream reports), else {}."""
    if batch.state not in (COMPLETED, REJECTED):
        return {}
    return {"finished": {"batch_id": batch.batch_id, "owner": batch.owner,
                         "format": batch.format, "mode": batch.mode, "state": batch.state,
                         "total": batch.total, "created": batch.created, "failed": batch.failed,
                         "problems": len(batch.problems)}}


def _taken(batch_id: str) -> str:
    return f"batch id {batch_id} is already taken; choose another id"


def _other_submission(batch: Batch, signature: tuple, digest: str | None) -> str:
    """Which fields of a resubmission differ from the batch's (content by its SHA-256)."""
    names = ("format", "mode", "control_count", "control_sum")
    differ = [f"{name} stored {stored!r}, sent {sent!r}"
              for name, stored, sent in zip(names, batch.signature()[:4], signature[:4])
              if stored != sent]
    if signature[4] is not None and signature[4] != digest:
        differ.append(f"content differs (SHA-256 stored {str(digest)[:12]}..., sent "
                      f"{signature[4][:12]}...)")
    return f"batch {batch.batch_id} was submitted before with other fields: " + "; ".join(differ)


def content_bytes(content: bytes | list[bytes]) -> bytes:
    """A batch's content: uploads keep their parts (see _submit), inline content is bytes."""
    return b"".join(content) if isinstance(content, list) else content


def _digest(content: bytes | list[bytes] | None, items: list | None) -> str | None:
    """What makes two submissions of one batch id the same content."""
    if content is not None:
        return hashlib.sha256(content_bytes(content)).hexdigest()
    if items is not None:
        return hashlib.sha256(msgpack.packb(items, use_bin_type=True)).hexdigest()
    return None
