"""Turns: which connection's frames the event loop handles next.

Two queues, as in a multilevel feedback queue. A connection whose frames arrive while it has none
waiting is an arrival: it gets a first turn of at most `first_turn_s`, ahead of everything else,
which is all a client that sends a request now and then needs. Whatever is left after a turn
(thousands of frames from one read, an expensive frame, a long reply, a decoded frame back from
the decode worker) waits in `rest`, served round robin in turns of at most `turn_s`. Between
two of these callbacks the event loop polls its sockets and runs timers.

Arrivals take their first turns in one callback after the read callbacks of a poll of the
sockets, in order, while those turns add up to less than `turn_s`; so one poll does at most about
one turn of work, however many connections it finds readable, and a request waits for about one
or two turns, however busy the others keep us. The plain transfers at the head of the first
arrivals, of one participant, are executed as one group before their turns (see run_group): many
connections with a request each, as payment apps keep them, then share one ledger step and one
WAL record, as one pipelining connection's requests do.
"""
import time
from collections import deque

from payswitch.protocol import parse_plain_transfers
from payswitch.switch.session import (COLUMNS_FROM_GROUPED_TRANSFERS, MAX_TRANSFER_GROUP,
                                      join_plain_transfers, parse_plain_bodies,
                                      run_transfer_group)


class Turns:
    def __init__(self, loop, turn_s: float, first_turn_s: float):
        self.loop = loop
        self.turn_s = turn_s
        self.first_turn_s = first_turn_s
        self.arrivals: deque = deque()  # connections waiting for their first turn
        self.rest: deque = deque()  # connections with work left after a turn
        self._scheduled = False

    def waiting(self) -> bool:
        """Whether any connection waits for a turn."""
        return bool(self.arrivals or self.rest)

    def ready(self, connection) -> None:
        """New frames on `connection`, which had none waiting: a first turn, in order."""
        self._wait(connection, self.arrivals)

    def enqueue(self, connection) -> None:
        """`connection` has work again (a verdict, its client reads again): a turn in order."""
        self._wait(connection, self.rest)

    def _wait(self, connection, queue: deque) -> None:
        if connection.in_line:
            return
        connection.in_line = True
        queue.append(connection)
        self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            self.loop.call_soon(self._next)

    def _turn(self, connection, turn_s: float) -> float:
        """One turn; returns its length. Work left waits in `rest`."""
        started_s = time.perf_counter()
        if connection.take_turn(started_s + turn_s):
            self._wait(connection, self.rest)
        return time.perf_counter() - started_s

    def _next(self) -> None:
        """First turns, in arrival order, for up to `turn_s`; then one turn from `rest`."""
        self._scheduled = False
        arrivals, spent_s = self.arrivals, 0.0
        grouped = 0
        if len(arrivals) > 1:
            grouped, spent_s = self.run_group(arrivals)
        for _ in range(grouped):  # now, whatever the time: the group left replies waiting
            connection = arrivals.popleft()
            connection.in_line = False
            session = connection.session
            if session.handling or session.eof or session.paused:  # frames after its
                # transfers, a half-close, reading paused: what a turn sees to
                spent_s += self._turn(connection, self.first_turn_s)
            else:  # nothing left to handle: only the glue, which sees to the replies
                connection.act_on_session()
        while arrivals and spent_s < self.turn_s:
            connection = arrivals.popleft()
            connection.in_line = False
            spent_s += self._turn(connection, self.first_turn_s)
        if self.rest:
            connection = self.rest.popleft()
            connection.in_line = False
            self._turn(connection, self.turn_s)
        if arrivals or self.rest:
            self._schedule()

    @staticmethod
    def run_group(arrivals: deque) -> tuple[int, float]:
        """Executes the plain transfers at the head of the first arrivals, of one participant,
        as one group of at most MAX_TRANSFER_GROUP (switch/session.py, run_transfer_group);
        returns how many arrivals it took transfers from, and the time it took. It stops at
        the first arrival with none to give, so those are the first in line. Their frames are
        checked together, a column at a time, when all are plain transfers; else each
        arrival's apart."""
        started_s = time.perf_counter()
        first = arrivals[0].session
        participant = first.participant
        heads = []  # (session, the bodies it may give)
        # the switch's room for held replies bounds the group, not each session's share alone
        room = min(MAX_TRANSFER_GROUP, first.dispatcher.transfer_room(first))
        for connection in arrivals:
            session = connection.session
            if room <= 0 or session.participant != participant:
                break
            bodies = session.plain_transfer_bodies(room)
            if bodies is None:
                break
            heads.append((session, bodies))
            room -= len(bodies)
        if not heads:
            return 0, time.perf_counter() - started_s
        # One connection's frames are checked as its own turn checks them (parse_plain_bodies,
        # below), not twice over when they are not all plain.
        every_body = [body for _, bodies in heads for body in bodies]
        taken = (parse_plain_transfers(every_body) if len(heads) > 1
                 and len(every_body) >= COLUMNS_FROM_GROUPED_TRANSFERS else None)
        if taken is not None:
            takers = [(session, len(bodies)) for session, bodies in heads]
        else:
            max_body_bytes = first.config.max_inline_decode_bytes
            parts, takers = [], []
            for session, bodies in heads:
                part = parse_plain_bodies(bodies, max_body_bytes)
                if part is None:
                    break
                parts.append(part)
                takers.append((session, len(part.request_ids)))
            if not parts:
                return 0, time.perf_counter() - started_s
            taken = join_plain_transfers(parts)
        for session, count in takers:
            session.drop_taken(count)
        run_transfer_group(takers, taken, time.perf_counter, started_s)
        return len(takers), time.perf_counter() - started_s
