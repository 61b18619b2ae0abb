"""`python -m client batch submit|status|results`: batch files from the operator's command line.

    batch submit FILE [--mode partial|atomic] [--batch-id ID] [--format csv|json|pain.001]
                      [--control-count N --control-sum N] [--wait]
    batch status ID [--wait]
    batch results ID [--format csv|pain.002] [--file ORIGINAL] [--output FILE]

`submit` parses the file locally (the same parser as the switch) to compute the control totals,
refuses to send a file with problems, and uploads it in parts (`upload_batch_part`) when it does
not fit in one frame of the switch (`max_frame_bytes`, learned from `hello`). The default batch id
comes from the file's SHA-256, so submitting the same file again gets the earlier outcome and
pays nothing twice. Progress goes to stderr: one `\\r`-refreshed bar on a terminal, plain lines
otherwise; stdout keeps the result (or, with `--json`, its JSON).
"""

import argparse
import asyncio
import datetime
import hashlib
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from payswitch.protocol import JSON, codes, encode_request
from payswitch.protocol.atomic_file import write_atomically
from payswitch.protocol.batch_files import pain002, parse_batch, results_csv

from .async_client import AsyncClient
from .commands import Output
from .errors import SwitchError
from .tables import fields, table

FORMATS_BY_SUFFIX = {".csv": "csv", ".json": "json", ".xml": "pain.001"}
FINISHED = ("completed", "rejected")
POLL_INTERVAL_S = 0.25
PLAIN_LINE_INTERVAL_S = 2.0  # without a terminal, at most one progress line this often
RESULTS_PAGE = 8190
UPLOAD_WINDOW = 4  # parts in flight at once
FRAME_SLACK_BYTES = 64  # msgpack/JSON length prefixes that grow with the data


def add_batch_commands(sub: argparse._SubParsersAction) -> None:
    """Registers `batch submit|status|results` on the CLI's command parser."""
    p = sub.add_parser("batch", help="batch files: submit, follow, download results")
    batch = p.add_subparsers(dest="batch_command", required=True, metavar="WHAT")

    s = batch.add_parser("submit", help="submit a CSV, JSON or pain.001 file (uploaded in parts "
                         "when larger than a frame)")
    s.add_argument("file", type=_readable_file, metavar="FILE", help="the batch file to submit")
    s.add_argument("--mode", choices=["partial", "atomic"], default="partial",
                   help="partial: each item on its own; atomic: all or nothing "
                        "(at most the switch's atomic limit, 10,000 items unless configured)")
    s.add_argument("--batch-id", help="the batch's id (default: 'file-' + the first 40 hex "
                   "digits of the file's SHA-256)")
    s.add_argument("--format", choices=["csv", "json", "pain.001"],
                   help="the file's format (default: from its extension: .csv, .json, "
                        ".xml for pain.001)")
    s.add_argument("--control-count", type=_non_negative, metavar="N",
                   help="number of items (default: counted by parsing the file here)")
    s.add_argument("--control-sum", type=_non_negative, metavar="N",
                   help="total in minor units (default: summed by parsing the file here)")
    s.add_argument("--wait", action="store_true", help="follow the batch until it ends")
    s.set_defaults(run=submit)

    s = batch.add_parser("status", help="progress and counts of a batch")
    s.add_argument("batch_id", metavar="ID", help="the batch's id")
    s.add_argument("--wait", action="store_true", help="follow the batch until it ends")
    s.set_defaults(run=status)

    s = batch.add_parser("results", help="per-item results as CSV, or a pain.002 status report "
                         "(waits for the batch to end)")
    s.add_argument("batch_id", metavar="ID", help="the batch's id")
    s.add_argument("--format", dest="results_format", choices=["csv", "pain.002"],
                   default="csv", help="csv: index,id,status per item; pain.002: an ISO 20022 "
                                       "status report")
    s.add_argument("--file", type=_readable_file, metavar="ORIGINAL",
                   help="the submitted pain.001 file (needed for pain.002)")
    s.add_argument("--output", type=Path, metavar="FILE", help="write there instead of stdout")
    s.set_defaults(run=results)


def _readable_file(text: str) -> Path:
    path = Path(text)
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {text}: {exc.strerror}") from None
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text} is not a file")
    return path


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def _usage(message: str) -> None:
    """A usage error found after parsing: exit code 2, like argparse's own."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


# --- progress -----------------------------------------------------------------------------

class Progress:
    """Renders `get_batch` summaries: a bar rewritten with `\\r` on a terminal, else lines."""

    def __init__(self, stream=None, *, tty: bool | None = None, width: int = 30):
        self.stream = sys.stderr if stream is None else stream
        self.tty = _isatty(self.stream) if tty is None else tty
        self.width = width
        self._first: tuple[float, int] | None = None  # (time, processed) when processing began
        self._last_line_s = float("-inf")
        self._last_text: str | None = None
        self._drawn = 0

    def rate(self, summary: dict) -> float | None:
        """Items per second since the batch was first seen processing."""
        now, processed = time.monotonic(), summary.get("processed") or 0
        if summary["state"] != "processing" and self._first is None:
            return None
        if self._first is None:
            self._first = (now, processed)
            return None
        elapsed, done = now - self._first[0], processed - self._first[1]
        return done / elapsed if elapsed > 0 and done > 0 else None

    def line(self, summary: dict, rate: float | None = None) -> str:
        state, total = summary["state"], summary.get("total") or 0
        processed = summary.get("processed") or 0
        head = f"batch {summary['batch_id']}: {state}"
        if state == "received":
            return f"{head} (reading and checking the file)"
        if state == "rejected":
            return f"{head}: {len(summary.get('problems') or [])} problem(s)"
        fraction = processed / total if total else 1.0
        filled = int(fraction * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        text = (f"{head} [{bar}] {fraction:6.1%} {processed:,}/{total:,} items, "
                f"created {summary.get('created') or 0:,}, failed {summary.get('failed') or 0:,}")
        return text + (f", {rate:,.0f} items/s" if rate else "")

    def update(self, summary: dict) -> None:
        text = self.line(summary, self.rate(summary))
        final = summary["state"] in FINISHED
        if self.tty:
            padding = " " * max(0, self._drawn - len(text))
            self.stream.write("\r" + text + padding + ("\n" if final else ""))
            self._drawn = 0 if final else len(text)
        else:
            now = time.monotonic()
            due = final or now - self._last_line_s >= PLAIN_LINE_INTERVAL_S
            if text != self._last_text and due:
                self.stream.write(text + "\n")
                self._last_line_s, self._last_text = now, text
        self.stream.flush()

    def end_line(self) -> None:
        """Keeps the line drawn last (on a terminal) and starts a new one."""
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = 0

    def message(self, text: str) -> None:
        """A one-off note (e.g. upload progress), as a bar on a terminal or a line otherwise."""
        if self.tty:
            padding = " " * max(0, self._drawn - len(text))
            self.stream.write("\r" + text + padding)
            self._drawn = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


async def get_summary(client: AsyncClient, batch_id: str) -> dict[str, Any]:
    """The whole `get_batch` map (with `processed` and `problems`)."""
    return await client.request("get_batch", {"batch_id": batch_id}, retry=True)


async def follow(client: AsyncClient, batch_id: str, progress: Progress,
                 interval_s: float = POLL_INTERVAL_S) -> dict[str, Any]:
    """Polls `get_batch` until the batch is completed or rejected, drawing progress."""
    while True:
        summary = await get_summary(client, batch_id)
        progress.update(summary)
        if summary["state"] in FINISHED:
            return summary
        await asyncio.sleep(interval_s)


def _summary_output(summary: dict, extra: Sequence[tuple[str, Any]] = ()) -> Output:
    total, processed = summary.get("total") or 0, summary.get("processed") or 0
    control = summary.get("control") or {}
    pairs = [("batch", summary["batch_id"]), *extra, ("state", summary["state"]),
             ("total", total), ("processed", processed),
             ("created", summary.get("created")), ("failed", summary.get("failed")),
             ("control_count", control.get("count")), ("control_sum", control.get("sum"))]
    text = fields(pairs)
    problems = summary.get("problems") or []
    error = None
    if summary["state"] == "rejected":
        text += "\n\nproblems\n" + table(["where", "reason"],
                                         [[p["where"], p["reason"]] for p in problems])
        error = SwitchError("batch_rejected", f"batch {summary['batch_id']} was rejected as a "
                            f"whole ({len(problems)} problem(s)); nothing was applied")
    data = {**summary, **dict(extra)}
    return Output(data, text, error)


# --- submit -------------------------------------------------------------------------------

def default_batch_id(content: bytes) -> str:
    return "file-" + hashlib.sha256(content).hexdigest()[:40]


def detect_format(path: Path, given: str | None) -> str:
    if given:
        return given
    found = FORMATS_BY_SUFFIX.get(path.suffix.lower())
    if found is None:
        _usage(f"cannot tell the format of {path.name} from its extension "
               f"({', '.join(FORMATS_BY_SUFFIX)}): pass --format")
    return found


def part_size(max_frame_bytes: int, batch_id: str, codec: str) -> int:
    """The most content bytes one `upload_batch_part` request can carry within a frame."""
    empty = encode_request(2**62, "upload_batch_part", {"batch_id": batch_id, "seq": 2**62,
                                                        "data": b""}, codec)
    room = max_frame_bytes - (len(empty) - 4) - FRAME_SLACK_BYTES
    size = room // 4 * 3 if codec == JSON else room  # JSON carries base64
    if size < 1:
        raise SwitchError(codes.FRAME_TOO_LARGE, f"the switch's frames ({max_frame_bytes} "
                          "bytes) are too small to carry any upload")
    return size


def _inline_content(content: bytes, codec: str):
    """`content` as the codec carries it in submit_batch (text in JSON), or None if it cannot
    travel inline at all (non-UTF-8 text in JSON)."""
    if codec != JSON:
        return content
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return None


async def upload(client: AsyncClient, batch_id: str, content: bytes, size: int,
                 progress: Progress) -> int:
    """Uploads `content` in parts of `size` bytes, a few in flight at once; returns the count."""
    count = -(-len(content) // size)
    window = asyncio.Semaphore(UPLOAD_WINDOW)
    done = 0

    async def one(seq: int) -> None:
        nonlocal done
        async with window:
            part = content[seq * size:(seq + 1) * size]
            reply = await client.upload_batch_part(batch_id, seq, part)
            if reply.bytes != len(part):
                raise SwitchError(codes.INTERNAL, f"part {seq}: the switch stored {reply.bytes} "
                                  f"bytes of {len(part)}")
            done += 1
            if count > 1 and (progress.tty or done == count or done % 10 == 0):
                progress.message(f"batch {batch_id}: uploaded {done}/{count} parts")

    await asyncio.gather(*(one(seq) for seq in range(count)))
    if progress.tty and count > 1:
        progress.end_line()
    return count


async def submit(client: AsyncClient, args: argparse.Namespace) -> Output:
    path: Path = args.file
    fmt = detect_format(path, args.format)
    if (args.control_count is None) != (args.control_sum is None):
        _usage("--control-count and --control-sum go together (or neither: computed here)")
    content = await asyncio.to_thread(path.read_bytes)
    batch_id = args.batch_id or default_batch_id(content)
    progress = Progress()
    if args.control_count is None:
        parsed = await asyncio.to_thread(parse_batch, fmt, content, None)
        if parsed.errors:
            rows = [[p.where, p.reason] for p in parsed.errors]
            return Output({"batch_id": batch_id, "file": str(path), "sent": False,
                           "problems": [{"where": w, "reason": r} for w, r in rows]},
                          "problems\n" + table(["where", "reason"], rows),
                          SwitchError("file_invalid", f"{path.name} has {len(rows)} "
                                      "problem(s); nothing was sent"))
        count, total = parsed.control["count"], parsed.control["sum"]
    else:
        count, total = args.control_count, args.control_sum
    codec = args.codec
    max_frame = client.server_info.get("max_frame_bytes") or 1 << 20
    inline = _inline_content(content, codec)
    fits = inline is not None and len(encode_request(
        2**62, "submit_batch", {"batch_id": batch_id, "format": fmt, "content": inline,
                                "control_count": count, "control_sum": total,
                                "mode": args.mode}, codec)) - 4 <= max_frame
    parts = 0
    note = None
    if fits:
        batch = await client.submit_batch(batch_id, fmt, control_count=count, control_sum=total,
                                          mode=args.mode, content=inline)
    else:
        try:
            await get_summary(client, batch_id)
            # Submitted before: its parts were consumed and cannot be sent again. The switch
            # compares format, mode and control totals; the default id stands for the content.
            note = "already submitted: content not sent again"
        except SwitchError as exc:
            if exc.code != codes.BATCH_NOT_FOUND:
                raise
            parts = await upload(client, batch_id, content,
                                 part_size(max_frame, batch_id, codec), progress)
        batch = await client.submit_batch(batch_id, fmt, control_count=count, control_sum=total,
                                          mode=args.mode)
    extra = [("file", str(path)), ("format", fmt), ("mode", args.mode), ("parts", parts)]
    if note:
        extra.append(("note", note))
    if args.wait:
        summary = await follow(client, batch_id, progress)
    else:
        summary = await get_summary(client, batch.batch_id)
    return _summary_output(summary, extra)


# --- status -------------------------------------------------------------------------------

async def status(client: AsyncClient, args: argparse.Namespace) -> Output:
    if args.wait:
        summary = await follow(client, args.batch_id, Progress())
    else:
        summary = await get_summary(client, args.batch_id)
    return _summary_output(summary)


# --- results ------------------------------------------------------------------------------

async def all_results(client: AsyncClient, batch_id: str) -> list[tuple[int, str, str]]:
    rows: list[tuple[int, str, str]] = []
    offset = 0
    while offset is not None:
        page = await client.get_batch_results(batch_id, offset=offset, limit=RESULTS_PAGE)
        rows += [(r.index, r.id, r.status) for r in page.results]
        offset = page.next
    return rows


def _pain002(original: Path, batch_id: str, rows: list) -> bytes:
    parsed = parse_batch("pain.001", original.read_bytes(), None)
    if parsed.errors:
        raise SwitchError("file_invalid", f"{original.name} is not a valid pain.001 document: "
                          f"{parsed.errors[0].where}: {parsed.errors[0].reason}")
    transactions = parsed.meta["transactions"]
    if len(transactions) != len(rows) or any(
            item["id"] != transfer_id for item, (_, transfer_id, _) in zip(parsed.items, rows)):
        raise SwitchError("file_mismatch", f"{original.name} is not the file of batch "
                          f"{batch_id}: its transactions differ from the batch's items")
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return pain002(parsed.meta, rows, now, batch_id[:35])


def _check_pain002_request(summary: dict[str, Any], args: argparse.Namespace) -> None:
    """A pain.002 report answers a pain.001 batch, and is built from its original file."""
    submitted = summary.get("format")  # absent from switches older than the field
    if submitted not in (None, "pain.001"):
        _usage(f"batch {args.batch_id} was submitted as {submitted}: a pain.002 status report "
               f"answers a pain.001 batch only; ask for its results as CSV instead: "
               f"batch results {args.batch_id} --format csv")
    if args.file is None:
        _usage("--format pain.002 needs --file ORIGINAL, the submitted pain.001 file")


async def results(client: AsyncClient, args: argparse.Namespace) -> Output:
    summary = await get_summary(client, args.batch_id)
    if args.results_format == "pain.002":
        _check_pain002_request(summary, args)
    if summary["state"] not in FINISHED:
        summary = await follow(client, args.batch_id, Progress())
    if summary["state"] == "rejected":
        return _summary_output(summary)
    rows = await all_results(client, args.batch_id)
    if len(rows) != summary["total"]:
        raise SwitchError(codes.INTERNAL, f"got {len(rows)} results for {summary['total']} items")
    if args.results_format == "pain.002":
        document = await asyncio.to_thread(_pain002, args.file, args.batch_id, rows)
    else:
        document = results_csv(rows)
    data = {"batch_id": args.batch_id, "format": args.results_format, "items": len(rows),
            "created": summary["created"], "failed": summary["failed"]}
    if args.output is None:
        return Output({**data, "results": [{"index": i, "id": t, "status": s}
                                           for i, t, s in rows]},
                      document.decode("utf-8").removesuffix("\n"))
    await asyncio.to_thread(write_atomically, args.output, document)
    return Output({**data, "output": str(args.output)},
                  f"wrote {len(rows):,} results ({summary['created']:,} created, "
                  f"{summary['failed']:,} failed) to {args.output}")
