"""Turns: which connection's frames the event loop handles next.

Two queues, as in a multilevel feedback queue. A connection whose frames arrive while it has none
waiting is an arrival: it gets a first turn of at most `first_turn_s`, ahead of everything else,
which is all a client that sends a request now and then needs. Whatever is left after a turn
(thousands of frames from one read, an expensive frame, a long reply, a decoded frame back from
the decode worker) waits in `rest`, served round robin in turns of at most `turn_s`. Between
two of these callbacks the event loop polls its sockets and runs timers.

Arrivals take their first turn at once, in their read callback, while the first turns taken
since the last callback of ours add up to less than `turn_s`; then they queue, in order. So one
poll of the sockets does at most about one turn of work, however many connections it finds
readable, and a request waits for about one or two turns, however busy the others keep us.
"""
import time
from collections import deque


class Turns:
    def __init__(self, loop, turn_s: float, first_turn_s: float):
        self.loop = loop
        self.turn_s = turn_s
        self.first_turn_s = first_turn_s
        self.arrivals: deque = deque()  # connections waiting for their first turn
        self.rest: deque = deque()  # connections with work left after a turn
        self.inline_spent_s = 0.0  # first turns taken in read callbacks since our last callback
        self._scheduled = False

    def ready(self, connection) -> None:
        """New frames on `connection`, which had none waiting: a first turn, now or in order."""
        if connection.in_line:
            return
        if not self.arrivals and self.inline_spent_s < self.turn_s:
            self.inline_spent_s += self._turn(connection, self.first_turn_s)
            self._schedule()  # resets the inline budget after this poll of the sockets
        else:
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
        self.inline_spent_s = 0.0
        arrivals, spent_s = self.arrivals, 0.0
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
