"""A large reply, encoded a step at a time in its connection's turns (see switch/turns.py).

A lookup of 8,190 accounts executes in ~4 ms, at one point in time, but its reply takes another
~15 ms to encode in JSON (~4 in MessagePack). Results are fresh values, never live ledger state
(records come from `as_record` copies), so the encoding can be spread over several turns with
other connections served, and state changing, in between; the connection handles nothing else
meanwhile, so its replies stay in order.
"""
from payswitch.protocol import encode_frame


class ReplyInSteps:
    def __init__(self, pieces, seq: int, request_id, codec: str):
        self.pieces = pieces  # from protocol.encode_body_in_steps
        self.done: list[bytes] = []
        self.seq = seq  # the WAL position the request executed at
        self.request_id = request_id
        self.codec = codec

    def run_until(self, session, deadline_s: float, clock) -> bool:
        """Encodes until clock() passes `deadline_s`, at least one piece; returns whether pieces
        are left. Once complete, the reply is queued, held for the WAL as any other."""
        done = self.done
        for piece in self.pieces:
            done.append(piece)
            if clock() > deadline_s:
                return True
        frame = encode_frame(b"".join(done))
        done.clear()
        session.queue_reply(self.seq, self.request_id, self.codec, frame,
                            session.dispatcher.durable_seq)
        return False
