"""Fair turns: which connection's frames the event loop handles next.

A connection whose frames wait (read but not yet handled) gets turns of at most `turn_s`. The
next turn goes to the waiting connection that has used the least handling time so far, as Linux's
CFS runs the task with the least virtual runtime: a client that sends a small request now and
then is served at once, ahead of one that keeps the switch busy with thousands of frames or
with expensive ones. Between two turns from the queue the event loop reads sockets and runs
timers, so nothing waits behind more than one turn.

A connection that becomes ready while no one waits, or that has used no more than the first in
line, takes its turn at once, in its read callback: no extra loop iteration on an idle switch.
Time used is counted from a floor (the least used in line when a connection last took a turn), so
a connection that was quiet for an hour does not then own the loop for as long.
"""
import heapq
import itertools
import time


class Turns:
    def __init__(self, loop, turn_s: float):
        self.loop = loop
        self.turn_s = turn_s
        self.line: list = []  # heap of (used_s, arrival, connection)
        self.floor_s = 0.0
        self._arrivals = itertools.count()
        self._scheduled = False

    def ready(self, connection) -> None:
        """`connection` has frames to handle: now, if it is first in line, else in turn."""
        if connection.in_line:
            return
        if connection.used_s < self.floor_s:
            connection.used_s = self.floor_s
        if self.line and connection.used_s > self.line[0][0]:
            self.enqueue(connection)
        else:
            self._turn(connection)

    def enqueue(self, connection) -> None:
        """`connection` takes its turn later, from a callback of its own (never re-entrant)."""
        if connection.in_line:
            return
        if connection.used_s < self.floor_s:
            connection.used_s = self.floor_s
        connection.in_line = True
        heapq.heappush(self.line, (connection.used_s, next(self._arrivals), connection))
        if not self._scheduled:
            self._scheduled = True
            self.loop.call_soon(self._next)

    def _turn(self, connection) -> None:
        started_s = time.perf_counter()
        more = connection.take_turn(started_s + self.turn_s)
        connection.used_s += time.perf_counter() - started_s
        if more:
            self.enqueue(connection)

    def _next(self) -> None:
        """One turn, for the least used connection in line."""
        self._scheduled = False
        line = self.line
        if line:
            used_s, _, connection = heapq.heappop(line)
            connection.in_line = False
            self.floor_s = max(self.floor_s, used_s)
            self._turn(connection)
        if line and not self._scheduled:
            self._scheduled = True
            self.loop.call_soon(self._next)
