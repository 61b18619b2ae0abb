"""Large frames are decoded and validated in a child process, off the event loop:

    python -m switch.decode_worker PARENT_PID NICE MAX_FRAME_BYTES LOG_FORMAT EXTRA_CURRENCIES

Decoding is pure, but a megabyte of JSON, or a map of twenty thousand keys, holds the event loop
for 5-10 ms, and every other client waits that long. Here the loop only hands the bytes over and
later takes back the verdict: the request's id, op, normalized args and codec, or the error it
gets. Its connection waits for that one frame (its replies stay in order); the others go on.

The child reads frames (protocol framing) on stdin and writes one verdict frame per frame, in
order, on stdout: a pickle of a Verdict (switch/verdict.py, a module of its own: this one runs as
`__main__` in the child, and pickle names a class by its module). Pickle, because the switch
loads 8,190 normalized transfers from it in ~4.5 ms, against ~10 from MessagePack and ~17 to
decode the frame itself (and a plain batch, as columns, in ~0.1 ms); it is safe here because
the child pickles only values it built.
"""
import asyncio
import os
import pickle
import subprocess
import sys
import time
from collections import deque

import structlog

from payswitch.protocol import FrameDecoder, codec_of, codes, encode_frame
from payswitch.protocol.framing import HEADER_BYTES
from payswitch.switch.child_process import accept_currencies_argument, currencies_argument, die_with_parent
from payswitch.switch.verdict import Problem, Verdict, verdict

log = structlog.get_logger("switch.decode_worker")
READ_BYTES = 1 << 20
# A verdict holds normalized args: a few times the frame at most (defaults filled in).
MAX_VERDICT_BYTES = 64 << 20
# Frames handed to the child before their verdicts: one being decoded, one ready behind it.
# The rest wait here, in memory they already took, not in a pipe buffer of their own.
IN_CHILD_MAX = 2
RESTART_INTERVAL_S = 1.0


def serve(read_fd: int, write_fd: int, max_frame_bytes: int) -> None:
    """Verdicts for frames from `read_fd` until it closes."""
    decoder = FrameDecoder(max_frame_bytes)
    pack = pickle.dumps
    while chunk := os.read(read_fd, READ_BYTES):
        out = []
        for body in decoder.feed(chunk):
            try:
                out.append(encode_frame(pack(verdict(body))))
            except Exception:  # a bug of ours: the frame is answered `internal`, we go on
                log.exception("request_failed", where="decode_worker")
                out.append(encode_frame(pack(Verdict(codec_of(body), None, None, None,
                                                     Problem(codes.INTERNAL, "internal error")))))
        with memoryview(b"".join(out)) as data:
            while data:
                data = data[os.write(write_fd, data):]


def main(argv: list[str]) -> int:
    parent_pid, nice, max_frame_bytes, log_format, extra_currencies = argv
    die_with_parent(int(parent_pid))
    accept_currencies_argument(extra_currencies)
    os.nice(int(nice))
    from payswitch.switch.logs import configure_logging
    configure_logging(log_format)
    serve(sys.stdin.fileno(), sys.stdout.fileno(), int(max_frame_bytes))
    return 0


class DecodeWorker:
    """The switch's side: hands frames to the child in arrival order and gives each verdict to
    its connection's `take_verdict`. If the child dies, the frame it was decoding is answered
    `internal` (it may be what killed it; nothing was executed), the others go to a new child,
    started at most once per RESTART_INTERVAL_S."""

    def __init__(self, config, loop):
        self.config = config
        self.loop = loop
        self.queued: deque = deque()  # (connection, body) not yet handed to the child
        self.in_child: deque = deque()  # (connection, body) handed over, oldest first
        self.process: subprocess.Popen | None = None
        self.frames = 0  # verdicts received since start
        self.restarts = 0
        self._writer = None
        self._started_s = float("-inf")
        self._closing = False

    @property
    def pending(self) -> int:
        return len(self.queued) + len(self.in_child)

    async def start(self) -> None:
        self._started_s = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "payswitch.switch.decode_worker", str(os.getpid()),
             str(self.config.decode_worker_nice), str(self.config.max_frame_bytes),
             self.config.log_format, currencies_argument()],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True)
        self._writer, _ = await self.loop.connect_write_pipe(asyncio.Protocol,
                                                             self.process.stdin)
        await self.loop.connect_read_pipe(lambda: _VerdictReader(self), self.process.stdout)
        self._hand_over()

    def submit(self, connection, body: bytes) -> None:
        self.queued.append((connection, body))
        self._hand_over()

    def _hand_over(self) -> None:
        writer = self._writer
        while self.queued and len(self.in_child) < IN_CHILD_MAX and writer is not None:
            connection, body = job = self.queued.popleft()
            if connection.closing:
                continue
            writer.write(len(body).to_bytes(HEADER_BYTES, "big"))  # no copy of the body
            writer.write(body)
            self.in_child.append(job)

    def on_verdict(self, frame: bytes) -> None:
        connection, _ = self.in_child.popleft()
        self.frames += 1
        self._hand_over()
        connection.take_verdict(pickle.loads(frame))

    def on_child_gone(self) -> None:
        self._writer = None
        if self._closing:
            return
        try:
            returncode = self.process.wait(1)
        except subprocess.TimeoutExpired:
            self.process.kill()
            returncode = self.process.wait()
        log.error("decode_worker_died", returncode=returncode, frames_waiting=self.pending,
                  action="the frame it was decoding is answered internal; a new worker starts")
        if self.in_child:
            connection, body = self.in_child.popleft()
            connection.take_verdict(Verdict(codec_of(body), None, None, None, Problem(
                codes.INTERNAL, "the decode worker stopped on this frame; nothing was executed")))
        self.queued.extendleft(reversed(self.in_child))
        self.in_child.clear()
        self.restarts += 1
        delay_s = max(0.0, self._started_s + RESTART_INTERVAL_S - time.monotonic())
        self.loop.call_later(delay_s, lambda: self.loop.create_task(self._restart()))

    async def _restart(self) -> None:
        try:
            await self.start()
        except OSError as error:
            log.error("decode_worker_start_failed", reason=str(error))
            self.loop.call_later(RESTART_INTERVAL_S,
                                 lambda: self.loop.create_task(self._restart()))

    def close(self) -> None:
        """Stops the child: it holds nothing but frames in flight, whose connections close."""
        self._closing = True
        if self.process is not None:
            self.process.kill()
            self.process.wait()


class _VerdictReader(asyncio.Protocol):
    def __init__(self, worker: DecodeWorker):
        self.worker = worker
        self.decoder = FrameDecoder(MAX_VERDICT_BYTES)

    def data_received(self, data: bytes) -> None:
        if self.decoder.too_large_length is not None:
            return  # the child is being stopped
        for frame in self.decoder.feed(data):
            self.worker.on_verdict(frame)
        if self.decoder.too_large_length is not None:  # a bug of ours: stop that child
            log.error("decode_worker_verdict_too_large", length=self.decoder.too_large_length)
            self.worker.process.kill()

    def connection_lost(self, exc) -> None:
        self.worker.on_child_gone()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
